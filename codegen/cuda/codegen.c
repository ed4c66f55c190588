/* codegen/cuda/codegen.c — driving the CUDA backend: the program tables,
 * kernel dedup, the translation unit, NVRTC. */
#include <stdlib.h>
#include <string.h>

#include "codegen/cuda/internal.h"

struct CudaModule {
    Compilation *c;
    RtProgram prog;
    char *source;
    void *cubin;
    int sm;
    bool hit;
    const char *cache_dir;
};

bool cuda_parse_target(const char *s, int *sm)
{
    *sm = 0;
    if (!strcmp(s, "cuda"))
        return true;
    if (strncmp(s, "cuda:sm_", 8))
        return false;
    char *end;
    long v = strtol(s + 8, &end, 10);
    if (*end == 'a')   /* sm_90a: sm_90 compiles for it anyway (nvrtc.c) */
        end++;
    if (*end || v < 80 || v > 200)
        return false;
    *sm = (int)v;
    return true;
}

FILE *cg_text(KText *t)
{
    t->buf = NULL;
    t->len = 0;
    t->f = open_memstream(&t->buf, &t->len);
    IR_ASSERT(t->f);
    return t->f;
}

static char *replace_all(Arena *a, const char *s, const char *from, const char *to)
{
    size_t nf = strlen(from), nt = strlen(to), count = 0;
    for (const char *p = s; (p = strstr(p, from)); p += nf)
        count++;
    char *out = arena_alloc(a, strlen(s) + count * nt + 1), *o = out;
    for (const char *p = s;;) {
        const char *q = strstr(p, from);
        if (!q) {
            strcpy(o, p);
            break;
        }
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, to, nt);
        o += nt;
        p = q + nf;
    }
    return out;
}

/* Every kernel starts with pdl_begin() (prelude.cu) unless its template
 * placed pdl_wait() itself, after work that reads no activation. */
static const char *with_pdl(Arena *a, const char *text)
{
    if (strstr(text, "pdl_wait()"))
        return arena_strdup(a, text);
    const char *k = strstr(text, "__global__");
    const char *body = k ? strstr(k, "\n{\n") : NULL;
    IR_ASSERT(body);
    body += 3;
    return arena_printf(a, "%.*s    pdl_begin();\n%s", (int)(body - text), text, body);
}

/* The timeline (CudaOptions.timeline): a TlScope first in the kernel's body,
 * its id the name's hash (rt_timeline_id, which the runtime computes from
 * the launch table too), and the time each block passed pdl_wait noted. */
static const char *with_timeline(Arena *a, const char *text, const char *name)
{
    const char *k = strstr(text, "__global__");
    const char *body = k ? strstr(k, "\n{\n") : NULL;
    IR_ASSERT(body);
    body += 3;
    const char *rest = replace_all(a, body, "pdl_wait();", "pdl_wait(); tl_.waited();");
    rest = replace_all(a, rest, "pdl_begin();", "pdl_begin(); tl_.waited();");
    return arena_printf(a, "%.*s    TlScope tl_(0x%08xu);\n%s", (int)(body - text), text, rt_timeline_id(name), rest);
}

const char *cg_kernel(CudaGen *g, const Node *n, KText *t, const char *suffix)
{
    fclose(t->f);
    const char *generic = with_pdl(g->c->arena, t->buf);
    free(t->buf);
    for (int i = 0; i < g->nk; i++)   /* the same template instance: share it */
        if (!strcmp(g->k[i].generic, generic)) {
            g->k[i].uses++;
            return g->k[i].name;
        }
    if (g->nk == g->capk) {
        size_t used = (size_t)g->nk, cap = (size_t)(g->capk = g->capk ? 2 * g->capk : 32);
        g->k = arena_grow(g->c->arena, g->k, used, cap, sizeof *g->k);
    }
    const char *name = pt_kernel_name(g->c->arena, n, suffix);
    const char *text = replace_all(g->c->arena, generic, "KNAME", name);
    if (g->timeline)
        text = with_timeline(g->c->arena, text, name);
    g->k[g->nk++] = (CudaKernel){.name = name, .generic = generic, .text = text,
                                 .comment = pt_node_text(g->c->arena, n), .uses = 1};
    return name;
}

int cg_buf(CudaGen *g, const Node *n)
{
    return g->t.node_buf[n->id];
}

int cg_scratch(CudaGen *g, int64_t floats)
{
    if (g->scratch_buf < 0) {
        g->scratch_buf = pt_new_buf(&g->t);
        g->t.bufs[g->scratch_buf].kind = RB_SCRATCH;
        g->t.bufs[g->scratch_buf].name = "split-KV and split-K partial results";
        g->t.bufs[g->scratch_buf].dtype = RT_F32;
    }
    int64_t bytes = (g->counters + floats) * 4;
    if (bytes > g->scratch_const)
        g->scratch_const = bytes;
    return g->scratch_buf;
}

static bool per_row(const Node *n)
{
    switch (n->op) {
    case OP_EMBEDDING: case OP_RMS_NORM: case OP_LINEAR: case OP_LINEAR_EW: case OP_SILU: case OP_ADD: case OP_SUB: case OP_MUL:
    case OP_FUSED: case OP_SOFTMAX: case OP_ARGMAX:
        return n->rank >= 1 && n->shape[0] == DIM_SEQ;
    default:
        return false;
    }
}

RtLaunch *cg_launch(CudaGen *g, const Node *n, const char *kernel, int nargs, const int *args, int block)
{
    IR_ASSERT(nargs <= RT_MAX_ARGS);
    RtLaunch *l = pt_new_launch(&g->t, n, kernel);
    l->nargs = nargs;
    memcpy(l->args, args, (size_t)nargs * sizeof *args);
    l->block = block;
    l->grid[0] = l->grid[1] = l->grid[2] = 1;
    l->min_T = 1;
    l->tail = n->id > g->last_attention && per_row(n);
    return l;
}

bool cuda_codegen(Compilation *c, const CudaOptions *o, CudaModule **out)
{
    Diags *d = c->diags;
    *out = NULL;
    if (!pt_bound(c))
        return false;
    CudaModule *m = calloc(1, sizeof *m);
    if (!m) {
        diag_error_nopos(d, "out of memory");
        return false;
    }
    m->c = c;
    m->sm = o->sm ? o->sm : 90;
    m->cache_dir = o->cache_dir;
    CudaGen g = {.c = c, .sm = m->sm, .last_attention = -1, .scratch_buf = -1, .timeline = o->timeline};
    pt_init(&g.t, c);
    RtProgram *p = &m->prog;
    if (!pt_assign_buffers(&g.t, p)) {
        free(m);
        return false;
    }
    g.counters = IR_KSPLIT_MAX_TILES;
    for (int i = 0; i < c->graph->n; i++)
        if (c->graph->nodes[i]->op == OP_ATTENTION) {
            g.last_attention = i;
            if (4 * c->graph->nodes[i]->src[0]->shape[1] > g.counters)
                g.counters = 4 * c->graph->nodes[i]->src[0]->shape[1];
        }
    g.counters = (g.counters + 63) / 64 * 64;
    for (int i = 0; i < c->graph->n; i++)
        if (!cuda_emit_node(&g, c->graph->nodes[i])) {
            free(m);
            return false;
        }
    if (g.scratch_buf >= 0)
        g.t.bufs[g.scratch_buf].bytes_const = g.scratch_const;
    pt_finish(&g.t, p);
    p->dequantize = o->dequantize;
    p->target = RT_TARGET_CUDA;
    p->sm = m->sm;

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    IR_ASSERT(f);
    fprintf(f, "// modelc: model %s, CUDA C for sm_%d, %d kernels for %d launches\n", p->model, m->sm, g.nk,
            p->nlaunch);
    if (o->timeline)
        fputs("#define MODELC_TIMELINE 1\n", f);
    fputs(cuda_prelude, f);
    if (g.wgmma)
        cg_wgmma_helpers(f);
    for (int i = 0; i < g.nk; i++) {
        fputs("\n// IR node: ", f);
        for (const char *cc = g.k[i].comment; *cc; cc++) {
            fputc(*cc, f);
            if (*cc == '\n')
                fputs("//", f);
        }
        fputc('\n', f);
        if (g.k[i].uses > 1)
            fprintf(f, "// (and %d more launches of this kernel)\n", g.k[i].uses - 1);
        fputs(g.k[i].text, f);
    }
    fclose(f);
    m->source = buf;
    *out = m;
    return true;
}

const char *cuda_source(const CudaModule *m)
{
    return m->source;
}

bool cuda_compile(CudaModule *m, Diags *d)
{
    size_t len = 0;
    if (!cuda_nvrtc_cubin(m->source, m->prog.model, m->sm, m->cache_dir, &m->cubin, &len, &m->hit, d))
        return false;
    m->prog.cubin = m->cubin;
    m->prog.cubin_len = (int64_t)len;
    return true;
}

bool cuda_cache_hit(const CudaModule *m)
{
    return m->hit;
}

char *cuda_ptx(CudaModule *m, Diags *d)
{
    return cuda_nvrtc_ptx(m->source, m->prog.model, m->sm, d);
}

const RtProgram *cuda_program(const CudaModule *m)
{
    return &m->prog;
}

void cuda_module_free(CudaModule *m)
{
    if (!m)
        return;
    free(m->source);
    free(m->cubin);
    free(m);
}
