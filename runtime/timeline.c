/* runtime/timeline.c — MODELC_TIMELINE's report: one step's blocks, as the
 * kernels logged them (prelude.cu: TlScope), matched to the launches that
 * ran and printed in launch order, then summed per kernel.
 *
 * A kernel's blocks carry its id (rt_timeline_id of its name), and layers
 * share kernels; the launches of one kernel in a step run one after another
 * (each waits for the kernels before it), so the first B blocks of that id by
 * start time are its first launch's, the next B its second's, and so on. */
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"

static int by_id_start(const void *a, const void *b)
{
    const RtTlRecord *x = a, *y = b;
    uint32_t ix = (uint32_t)(x->id_sm >> 32), iy = (uint32_t)(y->id_sm >> 32);
    if (ix != iy)
        return ix < iy ? -1 : 1;
    return x->start < y->start ? -1 : x->start > y->start;
}

static int64_t launch_blocks(const RtLaunch *L, int64_t T)
{
    int64_t b = 1;
    for (int d = 0; d < 3; d++)
        b *= L->grid_tok[d] > 0 ? L->grid[d] * ((T + L->grid_tok[d] - 1) / L->grid_tok[d]) : L->grid[d];
    return b;
}

/* The IR node's first line (Rtlaunch.what holds select's notes below it). */
static int line_len(const char *what)
{
    return what ? (int)strcspn(what, "\n") : 0;
}

typedef struct TlRow {
    int launch;
    int64_t blocks, got;
    uint64_t start, first_wait, waited, end;   /* first_wait: the earliest block past the wait, waited: the last */
    double adds;   /* µs this launch moved the step's end */
} TlRow;

typedef struct TlSum {
    const char *kernel;
    int launches;
    double adds, busy;
} TlSum;

bool rt_tl_report(FILE *f, const RtProgram *p, int64_t T, int64_t T_tail, RtTlRecord *rec, int64_t n)
{
    if (n <= 0)
        return false;
    qsort(rec, (size_t)n, sizeof *rec, by_id_start);
    TlRow *row = calloc((size_t)p->nlaunch, sizeof *row);
    TlSum *sum = calloc((size_t)p->nlaunch, sizeof *sum);
    int64_t *cursor = calloc((size_t)p->nlaunch, sizeof *cursor);   /* per launch: the next record of its id */
    if (!row || !sum || !cursor) {
        free(row);
        free(sum);
        free(cursor);
        return false;
    }
    for (int l = 0; l < p->nlaunch; l++)
        cursor[l] = -1;   /* -1: did not run in this step */
    int nrow = 0, nsum = 0;
    uint64_t t0 = UINT64_MAX;
    for (int l = 0; l < p->nlaunch; l++) {
        const RtLaunch *L = &p->launch[l];
        int64_t t = L->tail ? T_tail : T, blocks = launch_blocks(L, t);
        if (t < L->min_T || (L->max_T && t > L->max_T) || blocks <= 0)
            continue;
        uint32_t id = rt_timeline_id(L->kernel);
        int64_t at = -1;
        for (int e = l - 1; e >= 0 && at < 0; e--)   /* the last launch of this kernel that ran: on from there */
            if (cursor[e] >= 0 && !strcmp(p->launch[e].kernel, L->kernel))
                at = cursor[e];
        if (at < 0) {   /* the first record of this id */
            int64_t lo = 0, hi = n;
            while (lo < hi) {
                int64_t mid = lo + (hi - lo) / 2;
                if ((uint32_t)(rec[mid].id_sm >> 32) < id)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            at = lo;
        }
        TlRow *r = &row[nrow++];
        *r = (TlRow){.launch = l, .blocks = blocks, .start = UINT64_MAX, .first_wait = UINT64_MAX};
        for (; r->got < blocks && at < n && (uint32_t)(rec[at].id_sm >> 32) == id; at++, r->got++) {
            if (rec[at].start < r->start)
                r->start = rec[at].start;
            if (rec[at].waited < r->first_wait)
                r->first_wait = rec[at].waited;
            if (rec[at].waited > r->waited)
                r->waited = rec[at].waited;
            if (rec[at].end > r->end)
                r->end = rec[at].end;
        }
        cursor[l] = at;
        if (r->got && r->start < t0)
            t0 = r->start;
    }
    uint64_t last = t0, tend = t0;
    int64_t blocks = 0, missing = 0;
    for (int i = 0; i < nrow; i++)
        if (row[i].got && row[i].end > tend)
            tend = row[i].end;
    fprintf(f, "modelc: timeline of one step (T = %lld): %d launches, %.1f us from the first block's start to the last "
               "block's end\n",
            (long long)T, nrow, (double)(tend - t0) * 1e-3);
    fprintf(f, "  %-4s %-34s %7s %9s %9s %9s %9s %8s  %s\n", "#", "kernel", "blocks", "start us", "1st wait", "waited",
            "end us", "adds us", "node");
    for (int i = 0; i < nrow; i++) {
        TlRow *r = &row[i];
        const RtLaunch *L = &p->launch[r->launch];
        blocks += r->got;
        missing += r->blocks - r->got;
        if (!r->got) {
            fprintf(f, "  %-4d %-34.34s %7lld %9s %9s %9s %9s %8s  %.*s (no block logged)\n", i, L->kernel,
                    (long long)r->blocks, "-", "-", "-", "-", "-", line_len(L->what), L->what ? L->what : "");
            continue;
        }
        r->adds = r->end > last ? (double)(r->end - last) * 1e-3 : 0.0;
        if (r->end > last)
            last = r->end;
        fprintf(f, "  %-4d %-34.34s %7lld %9.2f %9.2f %9.2f %9.2f %8.2f  %.*s%s\n", i, L->kernel, (long long)r->blocks,
                (double)(r->start - t0) * 1e-3, (double)(r->first_wait - t0) * 1e-3, (double)(r->waited - t0) * 1e-3,
                (double)(r->end - t0) * 1e-3, r->adds,
                line_len(L->what), L->what ? L->what : "", r->got < r->blocks ? " (some blocks not logged)" : "");
        int s = 0;
        while (s < nsum && strcmp(sum[s].kernel, L->kernel))
            s++;
        if (s == nsum)
            sum[nsum++] = (TlSum){.kernel = L->kernel};
        sum[s].launches++;
        sum[s].adds += r->adds;
        sum[s].busy += (double)(r->end - r->start) * 1e-3;
    }
    fprintf(f, "modelc: per kernel (adds: how far its launches moved the step's end; span: first start to last end)\n");
    fprintf(f, "  %-34s %8s %10s %10s\n", "kernel", "launches", "adds us", "span us");
    for (int s = 0; s < nsum; s++)
        fprintf(f, "  %-34.34s %8d %10.2f %10.2f\n", sum[s].kernel, sum[s].launches, sum[s].adds, sum[s].busy);
    if (missing || blocks < n)
        fprintf(f, "modelc: %lld blocks had no record, %lld records matched no launch\n", (long long)missing,
                (long long)(n - blocks));
    free(row);
    free(sum);
    free(cursor);
    return true;
}
