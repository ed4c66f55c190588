/* ir/ir.c — op table, graph construction and small queries. */
#include "ir/ir.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const OpInfo ir_ops[OP_COUNT] = {
#define OP(id, name, sig, kw, flags, infer, emit) [OP_##id] = {name, sig, kw, flags},
#include "ir/ops.def"
#undef OP
};

static const char *const internal_names[OP_COUNT] = {
    [OP_INPUT] = "input", [OP_WEIGHT] = "weight", [OP_FUSED] = "fused", [OP_LINEAR_EW] = "linear_ew",
    [OP_QUANTIZE] = "quantize",
};

const char *ir_op_name(OpKind op)
{
    IR_ASSERT(op >= 0 && op < OP_COUNT);
    return ir_ops[op].name[0] ? ir_ops[op].name : internal_names[op];
}

const char *ir_dtype_name(DType t)
{
    static const char *const names[] = {"none", "f32", "f16", "bf16", "i32", "q8_0", "q4_0", "q4_1", "q8_1"};
    return names[t];
}

int ir_dtype_size(DType t)
{
    static const int sizes[] = {0, 4, 2, 2, 4, 0, 0, 0, 0};
    return sizes[t];
}

int ir_block_bytes(DType t)
{
    return t == DT_Q8_0 ? 34 : t == DT_Q4_0 ? 18 : t == DT_Q4_1 ? 20 : t == DT_Q8_1 ? 36 : 0;
}

bool ir_is_float(DType t)
{
    return t == DT_F32 || t == DT_F16 || t == DT_BF16;
}

_Noreturn void ir_bug(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "modelc: internal compiler error at %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

Graph *ir_graph_new(Arena *a, const char *name)
{
    Graph *g = arena_alloc(a, sizeof *g);
    g->arena = a;
    g->name = name;
    return g;
}

Node *ir_node(Graph *g, OpKind op, SrcLoc loc, int nsrc, Node **src)
{
    IR_ASSERT(nsrc <= IR_MAX_SRC);
    Node *n = arena_alloc(g->arena, sizeof *n);
    n->op = op;
    n->loc = loc;
    n->nsrc = nsrc;
    for (int i = 0; i < nsrc; i++)
        n->src[i] = src[i];
    n->layer = -1;
    n->buf = -1;
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 64;
        g->nodes = arena_grow(g->arena, g->nodes, (size_t)g->n, (size_t)g->cap, sizeof *g->nodes);
    }
    n->id = g->n;
    g->nodes[g->n++] = n;
    return n;
}

void ir_renumber(Graph *g)
{
    for (int i = 0; i < g->n; i++)
        g->nodes[i]->id = i;
}

int ir_group(const Graph *g, const Node *lead, const Node **parts)
{
    int n = 0;
    for (int i = lead->id; i < g->n; i++)
        if (g->nodes[i] == lead || g->nodes[i]->lead == lead) {
            IR_ASSERT(n < IR_MAX_GROUP);
            parts[n++] = g->nodes[i];
        }
    return n;
}

void ir_count_uses(Graph *g)
{
    for (int i = 0; i < g->n; i++)
        g->nodes[i]->nuses = 0;
    for (int i = 0; i < g->n; i++)
        for (int j = 0; j < g->nodes[i]->nsrc; j++)
            g->nodes[i]->src[j]->nuses++;
}

int ir_numel_per_tok(const Node *n, int64_t *per_tok, int64_t *constant)
{
    int64_t prod = 1;
    bool seq = false;
    for (int i = 0; i < n->rank; i++) {
        if (n->shape[i] == DIM_SEQ && !seq)
            seq = true;
        else if (n->shape[i] < 0)
            return -1;
        else if (__builtin_mul_overflow(prod, n->shape[i], &prod))
            return -2;
    }
    *per_tok = seq ? prod : 0;
    *constant = seq ? 0 : prod;
    return 0;
}

void ir_ew_program(const Node *n, EwProg *p)
{
    IR_ASSERT(ir_ops[n->op].flags & OPF_ELEMENTWISE);
    if (n->op == OP_FUSED) {
        *p = n->a.ew;
        return;
    }
    memset(p, 0, sizeof *p);
    for (int i = 0; i < n->nsrc; i++) {
        p->code[p->n] = EW_LOAD;
        p->arg[p->n++] = (uint8_t)i;
    }
    p->code[p->n++] = n->op == OP_SILU ? EW_SILU : n->op == OP_ADD ? EW_ADD : n->op == OP_SUB ? EW_SUB : EW_MUL;
}

/* Inverse frequencies, in double, with Llama-3 scaling when asked (as
 * transformers' _compute_llama3_parameters). */
void ir_rope_inv_freq(const RopeAttr *r, int64_t dh, double *inv)
{
    for (int64_t j = 0; j < dh / 2; j++) {
        double f = 1.0 / pow(r->theta, (double)(2 * j) / (double)dh);
        if (r->llama3) {
            double lo_wave = (double)r->orig_ctx / r->low_freq, hi_wave = (double)r->orig_ctx / r->high_freq;
            double wave = 2 * M_PI / f;
            if (wave > lo_wave) {
                f = f / r->factor;
            } else if (!(wave < hi_wave)) {
                double smooth = ((double)r->orig_ctx / wave - r->low_freq) / (r->high_freq - r->low_freq);
                f = (1 - smooth) * f / r->factor + smooth * f;
            }
        }
        inv[j] = f;
    }
}

double ir_attention_scale(const Node *n)
{
    return n->a.attn.scale ? n->a.attn.scale : 1.0 / sqrt((double)n->src[0]->shape[n->src[0]->rank - 1]);
}
