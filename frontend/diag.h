/* frontend/diag.h — diagnostics: collected, never printed-and-exited from deep code.
 *
 * A user error names file:line:col, quotes the source line and puts a caret
 * under the column:
 *
 *   models/llama.mdl:12:9: error: linear shapes [64,128] and [256,64] do not agree
 *      12 |   y = linear(x, w1)
 *         |       ^
 *
 * Errors without a source position (a bad config file, a missing weight) use
 * diag_error_nopos and print as "modelc: error: ...".  Compiler bugs are not
 * diagnostics: they go through IR_BUG (ir/ir.h) and abort. */
#ifndef MODELC_DIAG_H
#define MODELC_DIAG_H

#include <stdbool.h>
#include <stdio.h>

#include "ir/arena.h"

typedef struct Source {
    const char *path;   /* as the user wrote it */
    const char *text;   /* whole file, NUL-terminated (NULs inside are rejected by the lexer) */
    size_t len;
} Source;

typedef struct SrcLoc {
    const Source *src;  /* NULL: no position */
    int line, col;      /* 1-based */
} SrcLoc;

typedef enum { DIAG_ERROR, DIAG_NOTE } DiagLevel;

typedef struct Diag {
    DiagLevel level;
    SrcLoc loc;
    const char *msg;
    struct Diag *next;
} Diag;

typedef struct Diags {
    Arena *arena;
    Diag *head, *tail;
    int nerrors;
    int max_errors;      /* stop collecting past this many (0: 50) */
} Diags;

void diag_init(Diags *d, Arena *a);
void diag_error(Diags *d, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(Diags *d, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_error_nopos(Diags *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_print(const Diags *d, FILE *f);
bool diag_has_errors(const Diags *d);

#endif
