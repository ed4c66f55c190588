/* frontend/frontend.h — reading a spec: lex, parse, check.
 *
 * fe_parse_file reads and parses one spec file; on a syntax error it records
 * diagnostics (several per run: the parser recovers at statement boundaries)
 * and returns NULL.  fe_check runs the semantic checks (see frontend/sema.c)
 * and returns false with diagnostics recorded when any fails.  Neither ever
 * aborts or exits on bad input. */
#ifndef MODELC_FRONTEND_H
#define MODELC_FRONTEND_H

#include "frontend/ast.h"
#include "runtime/limits.h"   /* FE_MAX_*: what the frontend accepts */

Module *fe_parse_file(const char *path, Arena *a, Diags *d);
Module *fe_parse_string(const char *path, const char *text, size_t len, Arena *a, Diags *d);
bool fe_check(const Module *m, Diags *d);

#endif
