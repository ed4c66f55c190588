/* ir/print.c — the textual form of the IR.
 *
 *   graph llama {
 *     %0 = input "tokens" : i32[seq]
 *     %1 = weight "model.embed_tokens.weight" : bf16[49152, 576]
 *     %2 = embedding(%1, %0) : f32[seq, 576]             # x  @ llama.mdl:17:7
 *     ...
 *   }
 *
 * The text is stable (no addresses, no timings) so tests can diff it. */
#include "ir/ir.h"

#include <string.h>

static void print_shape(const Node *n, FILE *f)
{
    fprintf(f, "%s[", ir_dtype_name(n->dt));
    for (int i = 0; i < n->rank; i++) {
        if (i)
            fputs(", ", f);
        switch (n->shape[i]) {
        case DIM_SEQ: fputs("seq", f); break;
        case DIM_BATCH: fputs("batch", f); break;
        case DIM_CTX: fputs("ctx", f); break;
        case DIM_UNKNOWN: fputs("?", f); break;
        default: fprintf(f, "%lld", (long long)n->shape[i]);
        }
    }
    fputc(']', f);
}

static void print_ew(const EwProg *p, FILE *f)
{
    static const char *const names[] = {"", "silu", "add", "sub", "mul"};
    fputs(" {", f);
    for (int i = 0; i < p->n; i++) {
        if (p->code[i] == EW_LOAD)
            fprintf(f, " $%d", p->arg[i]);
        else
            fprintf(f, " %s", names[p->code[i]]);
    }
    fputs(" }", f);
}

static void print_attrs(const Node *n, FILE *f)
{
    switch (n->op) {
    case OP_RMS_NORM: fprintf(f, " {eps=%g}", n->a.eps); break;
    case OP_SPLIT_HEADS:
        if (n->a.heads == DIM_UNKNOWN)
            fputs(" {heads=?}", f);
        else
            fprintf(f, " {heads=%lld}", (long long)n->a.heads);
        break;
    case OP_ROPE:
        fprintf(f, " {theta=%g", n->a.rope.theta);
        if (n->a.rope.llama3)
            fprintf(f, " llama3 factor=%g low=%g high=%g orig_ctx=%lld", n->a.rope.factor, n->a.rope.low_freq,
                    n->a.rope.high_freq, (long long)n->a.rope.orig_ctx);
        fputc('}', f);
        break;
    case OP_ATTENTION:
        fprintf(f, " {causal=%s", n->a.attn.causal ? "true" : "false");
        if (n->a.attn.scale)
            fprintf(f, " scale=%g", n->a.attn.scale);
        if (n->a.attn.rope)
            fprintf(f, " rope(q, k) theta=%g%s", n->a.attn.rope_attr.theta, n->a.attn.rope_attr.llama3 ? " llama3" : "");
        fputc('}', f);
        break;
    case OP_FUSED: print_ew(&n->a.ew, f); break;
    case OP_LINEAR_EW:
        fprintf(f, " {products=%d", n->a.lew.nw);
        print_ew(&n->a.lew.ew, f);
        fputc('}', f);
        break;
    case OP_LINEAR:
        if (n->lead)
            fprintf(f, " {launched with %%%d}", n->lead->id);
        break;
    default: break;
    }
}

void ir_print_node(const Node *n, FILE *f)
{
    int col = fprintf(f, "  %%%d = %s", n->id, ir_op_name(n->op));
    if (n->op == OP_WEIGHT || n->op == OP_INPUT) {
        col += fprintf(f, " \"%s\"", n->weight);
    } else {
        col += fprintf(f, "(");
        for (int i = 0; i < n->nsrc; i++)
            col += n->src[i] ? fprintf(f, "%s%%%d", i ? ", " : "", n->src[i]->id)
                             : fprintf(f, "%snull", i ? ", " : "");   /* the verifier prints broken graphs */
        col += fprintf(f, ")");
    }
    print_attrs(n, f);
    fputs(" : ", f);
    print_shape(n, f);
    bool comment = n->name || n->output || n->buf >= 0 || n->loc.src;
    if (comment) {
        fputs("    #", f);
        if (n->output)
            fprintf(f, " output %s", n->output);
        else if (n->name)
            fprintf(f, " %s", n->name);
        if (n->buf >= 0)
            fprintf(f, " buf=%d", n->buf);
        if (n->loc.src) {
            const char *p = strrchr(n->loc.src->path, '/');
            fprintf(f, " @ %s:%d:%d", p ? p + 1 : n->loc.src->path, n->loc.line, n->loc.col);
        }
    }
    fputc('\n', f);
    for (int i = 0; i < n->nchoice; i++) {
        fputs("      # select: ", f);
        ir_print_choice(&n->choice[i], f);
        fputc('\n', f);
    }
    (void)col;
}

const char *ir_kernel_family_name(KernelFamily f)
{
    static const char *const names[] = {"gemv", "mma", "attn_split", "attn_rows", "attn_mma", "norm_rows", "norm_in_gemv",
                                         "wgmma"};
    return (unsigned)f < sizeof names / sizeof *names ? names[f] : "?";
}

void ir_print_choice(const KernelChoice *k, FILE *f)
{
    if (k->max_T)
        fprintf(f, "T in [%lld, %lld]: ", (long long)k->min_T, (long long)k->max_T);
    else
        fprintf(f, "T >= %lld: ", (long long)k->min_T);
    fputs(ir_kernel_family_name(k->family), f);
    switch (k->family) {
    case KF_GEMV:
        fprintf(f, " rows/warp=%d loads=%s", k->p[0], k->p[1] ? "16B" : "scalar");
        if (k->p[2] > 1)
            fprintf(f, " warps/row=%d", k->p[2]);
        if (k->p[3] > 0)
            fprintf(f, " batch=%d", k->p[3]);
        if (k->p[4] > 0)
            fprintf(f, " prefetch=%dx128B", k->p[4]);
        else if (k->p[4] < 0)
            fprintf(f, " prefetch=none");
        break;
    case KF_MMA:
        fprintf(f, " m16n8k16 tile=%dx%dx%d warps=%d%s", k->p[0], k->p[1], k->p[2], k->p[3], k->p[4] ? " a=hi+lo" : "");
        if (k->p[5] > 1)
            fprintf(f, " k-split=%d", k->p[5]);
        break;
    case KF_WGMMA:
        fprintf(f, " m64n%dk16 tile=%dx%dx%d warpgroups=%d stages=%d", k->p[1], k->p[0], k->p[1], k->p[2], k->p[3], k->p[4]);
        break;
    case KF_ATTN_SPLIT:
        fprintf(f, " keys/piece>=%d pieces<=%d", k->p[0], k->p[1]);
        if (k->p[2] > 0)
            fprintf(f, " ahead=%dKB", k->p[2]);
        if (k->p[3])
            fputs(" early-kv", f);
        break;
    case KF_ATTN_ROWS: case KF_ATTN_MMA: case KF_NORM_ROWS: case KF_NORM_IN_GEMV: break;
    }
    if (k->x_f16)
        fputs(" x=f16", f);
    if (k->y_f16)
        fputs(" y=f16", f);
    if (k->why)
        fprintf(f, " -- %s", k->why);
}

void ir_print(const Graph *g, FILE *f)
{
    fprintf(f, "graph %s {\n", g->name);
    for (int i = 0; i < g->n; i++) {
        if (g->nodes[i])
            ir_print_node(g->nodes[i], f);
        else
            fprintf(f, "  (null node at %d)\n", i);
    }
    fputs("}\n", f);
}
