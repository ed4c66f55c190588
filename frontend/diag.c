/* frontend/diag.c — collecting and printing diagnostics (see diag.h). */
#include "frontend/diag.h"

#include <stdarg.h>
#include <string.h>

void diag_init(Diags *d, Arena *a)
{
    memset(d, 0, sizeof *d);
    d->arena = a;
}

static void add(Diags *d, DiagLevel level, SrcLoc loc, const char *fmt, va_list ap)
{
    int limit = d->max_errors ? d->max_errors : 50;
    if (level == DIAG_ERROR) {
        d->nerrors++;
        if (d->nerrors > limit)
            return;
    }
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *msg = arena_alloc(d->arena, (size_t)n + 1);
    vsnprintf(msg, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    Diag *g = arena_alloc(d->arena, sizeof *g);
    g->level = level;
    g->loc = loc;
    g->msg = msg;
    if (d->tail)
        d->tail->next = g;
    else
        d->head = g;
    d->tail = g;
}

void diag_error(Diags *d, SrcLoc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add(d, DIAG_ERROR, loc, fmt, ap);
    va_end(ap);
}

void diag_note(Diags *d, SrcLoc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add(d, DIAG_NOTE, loc, fmt, ap);
    va_end(ap);
}

void diag_error_nopos(Diags *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add(d, DIAG_ERROR, (SrcLoc){0}, fmt, ap);
    va_end(ap);
}

bool diag_has_errors(const Diags *d)
{
    return d->nerrors > 0;
}

/* Print the source line of loc with a caret under its column.  Tabs are kept
 * in the caret line so the caret lines up in a terminal. */
static void print_excerpt(FILE *f, SrcLoc loc)
{
    const char *p = loc.src->text, *end = p + loc.src->len;
    for (int line = 1; line < loc.line && p < end; p++)
        if (*p == '\n')
            line++;
    const char *eol = p;
    while (eol < end && *eol != '\n' && *eol != '\r')
        eol++;
    int width = fprintf(f, "%5d | ", loc.line) - 2;
    fprintf(f, "%.*s\n%*s| ", (int)(eol - p), p, width, "");
    for (int i = 1; i < loc.col && p + i - 1 < eol; i++)
        fputc(p[i - 1] == '\t' ? '\t' : ' ', f);
    fputs("^\n", f);
}

void diag_print(const Diags *d, FILE *f)
{
    for (const Diag *g = d->head; g; g = g->next) {
        const char *lvl = g->level == DIAG_ERROR ? "error" : "note";
        if (g->loc.src) {
            fprintf(f, "%s:%d:%d: %s: %s\n", g->loc.src->path, g->loc.line, g->loc.col, lvl, g->msg);
            print_excerpt(f, g->loc);
        } else {
            fprintf(f, "modelc: %s: %s\n", lvl, g->msg);
        }
    }
    int limit = d->max_errors ? d->max_errors : 50;
    if (d->nerrors > limit)
        fprintf(f, "modelc: note: %d more errors not shown\n", d->nerrors - limit);
}
