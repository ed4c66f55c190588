/* codegen/program.c — program tables shared by the CPU and CUDA backends. */
#include <stdlib.h>
#include <string.h>

#include "codegen/program.h"

void pt_init(ProgTables *t, Compilation *c)
{
    memset(t, 0, sizeof *t);
    t->c = c;
    t->node_buf = arena_alloc(c->arena, (size_t)c->graph->n * sizeof *t->node_buf);
}

RtDType pt_rt_dtype(DType t)
{
    switch (t) {
    case DT_F32: return RT_F32;
    case DT_F16: return RT_F16;
    case DT_BF16: return RT_BF16;
    case DT_I32: return RT_I32;
    case DT_Q8_0: return RT_Q8_0;
    case DT_Q4_0: return RT_Q4_0;
    case DT_Q4_1: return RT_Q4_1;
    default: IR_BUG("no runtime dtype for %s", ir_dtype_name(t));
    }
}

int pt_new_buf(ProgTables *t)
{
    if (t->nbufs == t->capbufs) {
        t->capbufs = t->capbufs ? 2 * t->capbufs : 64;
        t->bufs = arena_grow(t->c->arena, t->bufs, (size_t)t->nbufs, (size_t)t->capbufs, sizeof *t->bufs);
    }
    memset(&t->bufs[t->nbufs], 0, sizeof *t->bufs);
    return t->nbufs++;
}

int pt_new_kv_buf(ProgTables *t, const Node *n, int which)
{
    int64_t hkv = n->src[1]->shape[1], dh = n->src[1]->shape[2];
    int id = pt_new_buf(t);
    RtBuf *b = &t->bufs[id];
    b->kind = RB_KV;
    b->name = arena_printf(t->c->arena, "%s cache of %%%d (layer %d)", which ? "v" : "k", n->id, n->layer);
    b->dtype = RT_F32;
    b->bytes_per_pos = hkv * dh * 4;
    return id;
}

bool pt_bound(const Compilation *c)
{
    if (!c->unbound)
        return true;
    diag_error_nopos(c->diags, "cannot generate code: some parameters have no value (give --weights, --config or --set)");
    return false;
}

const char *pt_kernel_name(Arena *a, const Node *n, const char *suffix)
{
    char clean[64] = "";
    if (n->name) {
        size_t j = 0;
        for (const char *p = n->name; *p && j < sizeof clean - 1; p++)
            clean[j++] = (char)((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ? *p : '_');
        clean[j] = 0;
    }
    const char *layer = n->layer >= 0 ? arena_printf(a, "_L%d", n->layer) : "";
    return arena_printf(a, "k%d_%s%s%s%s%s", n->id, ir_op_name(n->op), clean[0] ? "_" : "", clean, layer, suffix);
}

const char *pt_node_text(Arena *a, const Node *n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return "";
    ir_print_node(n, f);
    fclose(f);
    char *s = arena_strdup(a, buf);
    free(buf);
    size_t l = strlen(s);
    while (l && s[l - 1] == '\n')
        s[--l] = 0;
    while (*s == ' ')
        s++;
    return s;
}

RtLaunch *pt_new_launch(ProgTables *t, const Node *n, const char *kernel)
{
    if (t->nlaunch == t->caplaunch) {
        size_t used = (size_t)t->nlaunch, cap = (size_t)(t->caplaunch = t->caplaunch ? 2 * t->caplaunch : 64);
        t->launch = arena_grow(t->c->arena, t->launch, used, cap, sizeof *t->launch);
        t->comment = arena_grow(t->c->arena, t->comment, used, cap, sizeof *t->comment);
    }
    RtLaunch *l = &t->launch[t->nlaunch];
    memset(l, 0, sizeof *l);
    l->kernel = kernel;
    l->what = pt_node_text(t->c->arena, n);
    t->comment[t->nlaunch++] = l->what;
    return l;
}

bool pt_assign_buffers(ProgTables *t, RtProgram *p)
{
    Graph *gr = t->c->graph;
    Diags *d = t->c->diags;
    int *slot_buf = arena_alloc(t->c->arena, (size_t)(gr->nslots + 1) * sizeof *slot_buf);
    for (int s = 0; s < gr->nslots; s++) {
        slot_buf[s] = pt_new_buf(t);
        t->bufs[slot_buf[s]].kind = RB_SLOT;
        t->bufs[slot_buf[s]].slot = s;
    }
    p->tokens_buf = p->logits_buf = -1;
    for (int i = 0; i < gr->n; i++) {
        Node *n = gr->nodes[i];
        if (n->op == OP_INPUT) {
            if (p->tokens_buf >= 0 || n->dt != DT_I32 || n->rank != 1 || n->shape[0] != DIM_SEQ) {
                diag_error(d, n->loc, "the runtime takes exactly one input, token ids i32[seq]");
                return false;
            }
            int b = pt_new_buf(t);
            t->bufs[b] = (RtBuf){.kind = RB_INPUT, .name = n->weight, .dtype = RT_I32, .rank = 1};
            t->node_buf[i] = p->tokens_buf = b;
        } else if (n->op == OP_WEIGHT) {
            int b = pt_new_buf(t);
            t->bufs[b] = (RtBuf){.kind = RB_WEIGHT, .name = n->weight, .dtype = pt_rt_dtype(n->dt), .rank = n->rank};
            memcpy(t->bufs[b].shape, n->shape, (size_t)n->rank * sizeof *n->shape);
            t->node_buf[i] = b;
        } else {
            IR_ASSERT(n->buf >= 0 && n->buf < gr->nslots);
            t->node_buf[i] = slot_buf[n->buf];
        }
        if (n->op == OP_EMBEDDING && n->src[1]->op == OP_INPUT &&
            (!p->n_token_ids || n->src[0]->shape[0] < p->n_token_ids))
            p->n_token_ids = n->src[0]->shape[0];
        if (n->output && p->logits_buf < 0) {
            if (n->dt != DT_F32 || n->rank != 2 || n->shape[0] != DIM_SEQ || (ir_ops[n->op].flags & OPF_LEAF)) {
                diag_error(d, n->loc, "output '%s' must be computed logits f32[seq, vocab]", n->output);
                return false;
            }
            p->logits_buf = t->node_buf[i];
            p->vocab = n->shape[1];
        }
    }
    if (p->tokens_buf < 0) {
        diag_error(d, t->c->module->loc, "model '%s' has no input of token ids i32[seq]", gr->name);
        return false;
    }
    return true;
}

void pt_finish(ProgTables *t, RtProgram *p)
{
    Graph *gr = t->c->graph;
    p->model = gr->name;
    p->nbufs = t->nbufs;
    p->bufs = t->bufs;
    p->nslots = gr->nslots;
    p->slot_per_tok = gr->slot_per_tok;
    p->slot_const = gr->slot_const;
    p->nlaunch = t->nlaunch;
    p->launch = t->launch;
}
