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

/* Hard limits on what the frontend accepts (bad input beyond them is an error,
 * never a crash). */
#define FE_MAX_SOURCE_BYTES (16u << 20)  /* 16 MiB spec file */
#define FE_MAX_IDENT_LEN 256
#define FE_MAX_STRING_LEN 4096
#define FE_MAX_NESTING 64                /* parenthesis / call / repeat depth */
#define FE_MAX_RANK 8

Module *fe_parse_file(const char *path, Arena *a, Diags *d);
Module *fe_parse_string(const char *path, const char *text, size_t len, Arena *a, Diags *d);
bool fe_check(const Module *m, Diags *d);

#endif
