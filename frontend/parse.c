/* frontend/parse.c — reading a spec file and driving the lexer and parser.
 *
 * fe_parse_file reads the whole file (at most FE_MAX_SOURCE_BYTES) and hands
 * it to fe_parse_string, which copies it into the arena as the Source every
 * SrcLoc points into, rejects NUL bytes, and runs the bison parser over a
 * reentrant flex scanner (destroyed before returning).
 *
 * Requires: an arena and initialised Diags.
 * Guarantees: a Module only when this parse recorded no error; the tree
 * obeys the limits listed at the top of parser.y.  Problems with the file
 * itself (cannot open, too large) are positionless diagnostics. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "parser.h"
#include "lexer.h"

/* The source text, NUL-terminated, owned by the arena. */
static const Source *new_source(Arena *a, const char *path, const char *text, size_t len)
{
    Source *src = arena_alloc(a, sizeof *src);
    char *copy = arena_alloc(a, len + 1);
    if (len)
        memcpy(copy, text, len);
    src->path = arena_strdup(a, path);
    src->text = copy;
    src->len = len;
    return src;
}

/* Line and column of byte offset off. */
static SrcLoc loc_of(const Source *src, size_t off)
{
    SrcLoc loc = { src, 1, 1 };
    for (size_t i = 0; i < off; i++) {
        if (src->text[i] == '\n') {
            loc.line++;
            loc.col = 1;
        } else {
            loc.col++;
        }
    }
    return loc;
}

Module *fe_parse_string(const char *path, const char *text, size_t len, Arena *a, Diags *d)
{
    if (len > FE_MAX_SOURCE_BYTES) {
        diag_error_nopos(d, "'%s' is too large: %zu bytes (the limit is %u)", path, len,
                         FE_MAX_SOURCE_BYTES);
        return NULL;
    }
    const Source *src = new_source(a, path, text, len);
    const char *nul = memchr(src->text, '\0', len);
    if (nul) {
        diag_error(d, loc_of(src, (size_t)(nul - src->text)), "file contains a NUL byte");
        return NULL;
    }

    ParseCtx ctx = {
        .arena = a,
        .diags = d,
        .src = src,
        .nerrors_at_start = d->nerrors,
        .line = 1,
        .col = 1,
        .end_line = 1,
        .end_col = 1,
        .at_bol = true,
    };
    yyscan_t scanner;
    if (fe_yylex_init_extra(&ctx, &scanner) != 0) {
        diag_error_nopos(d, "cannot start the lexer: %s", errno == ENOMEM ? "out of memory" : strerror(errno));
        return NULL;
    }
    fe_yy_scan_bytes(src->text, (int)len, scanner);
    fe_yyparse(scanner, &ctx);
    fe_yylex_destroy(scanner);

    if (d->nerrors != ctx.nerrors_at_start)
        return NULL;
    return ctx.module;
}

Module *fe_parse_file(const char *path, Arena *a, Diags *d)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        diag_error_nopos(d, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    /* read at most one byte past the limit, so that "too large" needs no stat
     * and works for pipes as well */
    size_t cap = 1 << 16, len = 0;
    char *buf = NULL;
    for (;;) {
        char *grown = realloc(buf, cap);
        if (!grown) {
            free(buf);
            fclose(f);
            diag_error_nopos(d, "cannot read '%s': out of memory", path);
            return NULL;
        }
        buf = grown;
        size_t want = cap - len;
        if (len + want > (size_t)FE_MAX_SOURCE_BYTES + 1)
            want = (size_t)FE_MAX_SOURCE_BYTES + 1 - len;
        size_t got = fread(buf + len, 1, want, f);
        len += got;
        if (got < want || len > FE_MAX_SOURCE_BYTES)
            break;
        cap *= 2;
    }
    bool failed = ferror(f);
    int err = errno;
    fclose(f);
    Module *m = NULL;
    if (failed)
        diag_error_nopos(d, "cannot read '%s': %s", path, strerror(err));
    else if (len > FE_MAX_SOURCE_BYTES)
        diag_error_nopos(d, "'%s' is too large: more than %u bytes", path, FE_MAX_SOURCE_BYTES);
    else
        m = fe_parse_string(path, buf, len, a, d);
    free(buf);
    return m;
}
