/* tests/ir/test_ir.c — the graph IR: construction, small queries, shape
 * inference, the printer and the verifier.
 *
 *   - construction: ir_node appends with ids = positions (past the first
 *     capacity), ir_renumber, ir_count_uses (an operand used twice counts
 *     twice), ir_numel_per_tok, the op table, ir_ew_program;
 *   - inference: every op through ir_infer_node, its result dtype and shape,
 *     and every error class with its exact text (rank, dtype, mismatched
 *     dims, split_heads divisibility, rope's odd head_dim, attention's head
 *     ratio); DIM_UNKNOWN agrees with anything;
 *   - ir_print: golden text for a small graph, written here;
 *   - ir_verify: a valid graph passes; each broken graph makes it abort.
 *     Those run in a fork()ed child whose stderr goes to a temporary file:
 *     the child must die of SIGABRT and its stderr must name the fault.
 *
 * Graphs are built by hand: leaves get their dtype and shape directly, as the
 * "lower" pass would give them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ir/ir.h"

#define S DIM_SEQ
#define U DIM_UNKNOWN

typedef struct Fx {
    Arena *a;
    Graph *g;
    Diags d;
} Fx;

static int setup(void **state)
{
    Fx *f = calloc(1, sizeof *f);
    f->a = arena_new();
    f->g = ir_graph_new(f->a, "g");
    diag_init(&f->d, f->a);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    Fx *f = *state;
    arena_free(f->a);
    free(f);
    return 0;
}

static const SrcLoc noloc = {0};

/* A leaf (input or weight) of dtype dt and the given dims. */
static Node *leafv(Graph *g, OpKind op, DType dt, int rank, va_list ap)
{
    Node *n = ir_node(g, op, noloc, 0, NULL);
    n->dt = dt;
    n->rank = rank;
    for (int i = 0; i < rank; i++)
        n->shape[i] = va_arg(ap, int64_t);
    n->weight = arena_printf(g->arena, "%s%d", op == OP_INPUT ? "in" : "w", n->id);
    return n;
}

static Node *input(Graph *g, DType dt, int rank, ...)
{
    va_list ap;
    va_start(ap, rank);
    Node *n = leafv(g, OP_INPUT, dt, rank, ap);
    va_end(ap);
    return n;
}

static Node *weight(Graph *g, DType dt, int rank, ...)
{
    va_list ap;
    va_start(ap, rank);
    Node *n = leafv(g, OP_WEIGHT, dt, rank, ap);
    va_end(ap);
    return n;
}

/* A non-leaf node; no shape until inferred. */
static Node *op(Graph *g, OpKind k, int nsrc, ...)
{
    Node *src[IR_MAX_SRC];
    va_list ap;
    va_start(ap, nsrc);
    for (int i = 0; i < nsrc; i++)
        src[i] = va_arg(ap, Node *);
    va_end(ap);
    return ir_node(g, k, noloc, nsrc, src);
}

/* The shape written as text, e.g. "f32[seq, 4, ?]". */
static const char *shape_of(Fx *f, const Node *n)
{
    return arena_printf(f->a, "%s%s", ir_dtype_name(n->dt), ir_shape_str(f->a, n));
}

/* n infers to the given dtype+shape text, with no diagnostic. */
static void infer_ok(Fx *f, Node *n, const char *want)
{
    Diags d;
    diag_init(&d, f->a);
    bool ok = ir_infer_node(n, &d);
    if (!ok)
        fail_msg("inference of %s failed: %s", ir_op_name(n->op), d.head ? d.head->msg : "(no message)");
    assert_int_equal(d.nerrors, 0);
    assert_string_equal(shape_of(f, n), want);
}

/* n fails inference with exactly one diagnostic, msg. */
static void infer_err(Fx *f, Node *n, const char *msg)
{
    Diags d;
    diag_init(&d, f->a);
    assert_false(ir_infer_node(n, &d));
    assert_int_equal(d.nerrors, 1);
    assert_non_null(d.head);
    assert_string_equal(d.head->msg, msg);
}

/* ---- construction ------------------------------------------------------------ */

static void test_node_construction(void **state)
{
    Fx *f = *state;
    Graph *g = f->g;
    assert_string_equal(g->name, "g");
    assert_ptr_equal(g->arena, f->a);
    assert_int_equal(g->n, 0);

    Node *x = input(g, DT_F32, 2, (int64_t)S, (int64_t)8);
    SrcLoc loc = {.line = 3, .col = 5};
    Node *y = ir_node(g, OP_SILU, loc, 1, &x);
    assert_int_equal(x->id, 0);
    assert_int_equal(y->id, 1);
    assert_int_equal(y->op, OP_SILU);
    assert_int_equal(y->nsrc, 1);
    assert_ptr_equal(y->src[0], x);
    assert_int_equal(y->loc.line, 3);
    assert_int_equal(y->loc.col, 5);
    assert_int_equal(y->layer, -1);
    assert_int_equal(y->buf, -1);
    assert_int_equal(y->dt, DT_NONE);
    assert_int_equal(y->rank, 0);
    assert_null(y->name);
    assert_null(y->output);

    /* past the first capacity (64) the node table grows and keeps its order */
    Node *prev = y;
    for (int i = 0; i < 300; i++)
        prev = ir_node(g, OP_SILU, noloc, 1, &prev);
    assert_int_equal(g->n, 302);
    assert_true(g->cap >= 302);
    for (int i = 0; i < g->n; i++) {
        assert_int_equal(g->nodes[i]->id, i);
        if (i >= 1)
            assert_ptr_equal(g->nodes[i]->src[0], g->nodes[i - 1]);
    }
    assert_ptr_equal(g->nodes[0], x);
    assert_ptr_equal(g->nodes[1], y);
}

static void test_renumber_and_uses(void **state)
{
    Fx *f = *state;
    Graph *g = f->g;
    Node *x = input(g, DT_F32, 2, (int64_t)S, (int64_t)8);
    Node *w = weight(g, DT_F32, 2, (int64_t)8, (int64_t)8);
    Node *dead = op(g, OP_SILU, 1, x);
    Node *l = op(g, OP_LINEAR, 2, x, w);
    Node *sq = op(g, OP_MUL, 2, l, l);
    Node *sum = op(g, OP_ADD, 2, sq, x);

    ir_count_uses(g);
    assert_int_equal(x->nuses, 3);      /* dead, linear, add */
    assert_int_equal(w->nuses, 1);
    assert_int_equal(dead->nuses, 0);
    assert_int_equal(l->nuses, 2);      /* l * l: counted once per operand slot */
    assert_int_equal(sq->nuses, 1);
    assert_int_equal(sum->nuses, 0);

    /* counting again starts from zero */
    ir_count_uses(g);
    assert_int_equal(x->nuses, 3);

    /* drop 'dead' by hand: ids are stale until ir_renumber */
    int k = 0;
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i] != dead)
            g->nodes[k++] = g->nodes[i];
    g->n = k;
    assert_int_equal(sum->id, 5);
    ir_renumber(g);
    for (int i = 0; i < g->n; i++)
        assert_int_equal(g->nodes[i]->id, i);
    assert_int_equal(l->id, 2);
    assert_int_equal(sum->id, 4);
    ir_count_uses(g);
    assert_int_equal(x->nuses, 2);
}

static void test_numel_per_tok(void **state)
{
    Fx *f = *state;
    Graph *g = f->g;
    int64_t pt = -7, c = -7;

    Node *a = input(g, DT_F32, 2, (int64_t)S, (int64_t)32);
    assert_int_equal(ir_numel_per_tok(a, &pt, &c), 0);
    assert_int_equal(pt, 32);
    assert_int_equal(c, 0);

    Node *b = input(g, DT_F32, 3, (int64_t)S, (int64_t)4, (int64_t)8);
    assert_int_equal(ir_numel_per_tok(b, &pt, &c), 0);
    assert_int_equal(pt, 32);
    assert_int_equal(c, 0);

    Node *cst = input(g, DT_F32, 2, (int64_t)48, (int64_t)32);
    assert_int_equal(ir_numel_per_tok(cst, &pt, &c), 0);
    assert_int_equal(pt, 0);
    assert_int_equal(c, 48 * 32);

    Node *seq_only = input(g, DT_I32, 1, (int64_t)S);
    assert_int_equal(ir_numel_per_tok(seq_only, &pt, &c), 0);
    assert_int_equal(pt, 1);
    assert_int_equal(c, 0);

    Node *scalar = input(g, DT_F32, 0);
    assert_int_equal(ir_numel_per_tok(scalar, &pt, &c), 0);
    assert_int_equal(pt, 0);
    assert_int_equal(c, 1);

    /* seq in the middle is still one factor of T */
    Node *mid = input(g, DT_F32, 3, (int64_t)4, (int64_t)S, (int64_t)2);
    assert_int_equal(ir_numel_per_tok(mid, &pt, &c), 0);
    assert_int_equal(pt, 8);
    assert_int_equal(c, 0);

    /* not of the form per_tok*T + constant */
    assert_int_equal(ir_numel_per_tok(input(g, DT_F32, 2, (int64_t)S, (int64_t)U), &pt, &c), -1);
    assert_int_equal(ir_numel_per_tok(input(g, DT_F32, 2, (int64_t)S, (int64_t)S), &pt, &c), -1);
    assert_int_equal(ir_numel_per_tok(input(g, DT_F32, 2, (int64_t)DIM_CTX, (int64_t)4), &pt, &c), -1);
    assert_int_equal(ir_numel_per_tok(input(g, DT_F32, 2, (int64_t)DIM_BATCH, (int64_t)4), &pt, &c), -1);
}

static void test_op_table(void **state)
{
    (void)state;
    assert_string_equal(ir_op_name(OP_INPUT), "input");
    assert_string_equal(ir_op_name(OP_WEIGHT), "weight");
    assert_string_equal(ir_op_name(OP_FUSED), "fused");
    assert_string_equal(ir_op_name(OP_LINEAR), "linear");
    assert_string_equal(ir_op_name(OP_SPLIT_HEADS), "split_heads");
    assert_string_equal(ir_op_name(OP_ARGMAX), "argmax");
    /* every op has a name; spec names are unique */
    for (int i = 0; i < OP_COUNT; i++) {
        assert_non_null(ir_op_name((OpKind)i));
        assert_true(ir_op_name((OpKind)i)[0] != 0);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(ir_op_name((OpKind)i), ir_op_name((OpKind)j));
        /* positional operand count fits the node */
        assert_true(strlen(ir_ops[i].sig) <= IR_MAX_SRC);
    }
    assert_true(ir_ops[OP_INPUT].flags & OPF_LEAF);
    assert_true(ir_ops[OP_WEIGHT].flags & OPF_LEAF);
    assert_true(ir_ops[OP_SPLIT_HEADS].flags & OPF_VIEW);
    assert_true(ir_ops[OP_MERGE_HEADS].flags & OPF_VIEW);
    static const OpKind ew[] = {OP_SILU, OP_ADD, OP_SUB, OP_MUL, OP_FUSED};
    for (size_t i = 0; i < sizeof ew / sizeof *ew; i++)
        assert_true(ir_ops[ew[i]].flags & OPF_ELEMENTWISE);
    assert_false(ir_ops[OP_SOFTMAX].flags & OPF_ELEMENTWISE);
    assert_false(ir_ops[OP_LINEAR].flags & (OPF_ELEMENTWISE | OPF_VIEW | OPF_LEAF));

    assert_string_equal(ir_dtype_name(DT_NONE), "none");
    assert_string_equal(ir_dtype_name(DT_F32), "f32");
    assert_string_equal(ir_dtype_name(DT_F16), "f16");
    assert_string_equal(ir_dtype_name(DT_BF16), "bf16");
    assert_string_equal(ir_dtype_name(DT_I32), "i32");
    assert_int_equal(ir_dtype_size(DT_F32), 4);
    assert_int_equal(ir_dtype_size(DT_F16), 2);
    assert_int_equal(ir_dtype_size(DT_BF16), 2);
    assert_int_equal(ir_dtype_size(DT_I32), 4);
    assert_true(ir_is_float(DT_F32) && ir_is_float(DT_F16) && ir_is_float(DT_BF16));
    assert_false(ir_is_float(DT_I32) || ir_is_float(DT_NONE));
}

static const char *ew_text(Fx *f, const EwProg *p)
{
    static const char *const names[] = {"", "silu", "add", "sub", "mul"};
    char *s = arena_strdup(f->a, "");
    for (int i = 0; i < p->n; i++)
        s = p->code[i] == EW_LOAD ? arena_printf(f->a, "%s%s$%d", s, i ? " " : "", p->arg[i])
                                  : arena_printf(f->a, "%s%s%s", s, i ? " " : "", names[p->code[i]]);
    return s;
}

static void test_ew_program(void **state)
{
    Fx *f = *state;
    Graph *g = f->g;
    Node *x = input(g, DT_F32, 2, (int64_t)S, (int64_t)8), *y = input(g, DT_F32, 2, (int64_t)S, (int64_t)8);
    EwProg p;
    ir_ew_program(op(g, OP_SILU, 1, x), &p);
    assert_string_equal(ew_text(f, &p), "$0 silu");
    ir_ew_program(op(g, OP_ADD, 2, x, y), &p);
    assert_string_equal(ew_text(f, &p), "$0 $1 add");
    ir_ew_program(op(g, OP_SUB, 2, y, x), &p);
    assert_string_equal(ew_text(f, &p), "$0 $1 sub");
    ir_ew_program(op(g, OP_MUL, 2, x, x), &p);
    assert_string_equal(ew_text(f, &p), "$0 $1 mul");
    Node *fu = op(g, OP_FUSED, 2, x, y);
    fu->a.ew = (EwProg){.n = 4, .code = {EW_LOAD, EW_SILU, EW_LOAD, EW_MUL}, .arg = {1, 0, 0, 0}};
    ir_ew_program(fu, &p);
    assert_string_equal(ew_text(f, &p), "$1 silu $0 mul");
}

/* ---- inference: results ------------------------------------------------------- */

static void test_infer_shapes(void **state)
{
    Fx *f = *state;
    Graph *g = f->g;
    Node *tok = input(g, DT_I32, 1, (int64_t)S);
    Node *emb = weight(g, DT_BF16, 2, (int64_t)100, (int64_t)32);
    Node *x = op(g, OP_EMBEDDING, 2, emb, tok);
    infer_ok(f, x, "f32[seq, 32]");

    /* ids of higher rank keep their dims */
    Node *tok2 = input(g, DT_I32, 2, (int64_t)DIM_BATCH, (int64_t)S);
    infer_ok(f, op(g, OP_EMBEDDING, 2, emb, tok2), "f32[batch, seq, 32]");

    Node *nw = weight(g, DT_F16, 1, (int64_t)32);
    Node *h = op(g, OP_RMS_NORM, 2, x, nw);
    infer_ok(f, h, "f32[seq, 32]");

    Node *wq = weight(g, DT_F16, 2, (int64_t)64, (int64_t)32);
    Node *q = op(g, OP_LINEAR, 2, h, wq);
    infer_ok(f, q, "f32[seq, 64]");

    Node *qh = op(g, OP_SPLIT_HEADS, 1, q);
    qh->a.heads = 4;
    infer_ok(f, qh, "f32[seq, 4, 16]");
    Node *qr = op(g, OP_ROPE, 1, qh);
    infer_ok(f, qr, "f32[seq, 4, 16]");

    Node *wk = weight(g, DT_F32, 2, (int64_t)32, (int64_t)32);
    Node *k = op(g, OP_LINEAR, 2, h, wk);
    infer_ok(f, k, "f32[seq, 32]");
    Node *kh = op(g, OP_SPLIT_HEADS, 1, k);
    kh->a.heads = 2;
    infer_ok(f, kh, "f32[seq, 2, 16]");

    Node *att = op(g, OP_ATTENTION, 3, qr, kh, kh);   /* 4 query heads over 2 kv heads */
    infer_ok(f, att, "f32[seq, 4, 16]");
    Node *m = op(g, OP_MERGE_HEADS, 1, att);
    infer_ok(f, m, "f32[seq, 64]");

    /* views keep their operand's dtype; the others compute in f32 */
    Node *hw = weight(g, DT_BF16, 2, (int64_t)4, (int64_t)6);
    Node *hv = op(g, OP_SPLIT_HEADS, 1, hw);
    hv->a.heads = 2;
    infer_ok(f, hv, "bf16[4, 2, 3]");
    infer_ok(f, op(g, OP_MERGE_HEADS, 1, hv), "bf16[4, 6]");
    infer_ok(f, op(g, OP_SILU, 1, hw), "f32[4, 6]");

    infer_ok(f, op(g, OP_SILU, 1, m), "f32[seq, 64]");
    infer_ok(f, op(g, OP_ADD, 2, x, h), "f32[seq, 32]");
    infer_ok(f, op(g, OP_SUB, 2, x, h), "f32[seq, 32]");
    infer_ok(f, op(g, OP_MUL, 2, x, h), "f32[seq, 32]");
    infer_ok(f, op(g, OP_SOFTMAX, 1, q), "f32[seq, 64]");
    infer_ok(f, op(g, OP_ARGMAX, 1, q), "i32[seq]");
    infer_ok(f, op(g, OP_ARGMAX, 1, qh), "i32[seq, 4]");

    Node *fu = op(g, OP_FUSED, 3, x, h, x);
    fu->a.ew = (EwProg){.n = 5, .code = {EW_LOAD, EW_LOAD, EW_ADD, EW_LOAD, EW_MUL}, .arg = {0, 1, 0, 2, 0}};
    infer_ok(f, fu, "f32[seq, 32]");

    /* leaves keep what they were given */
    infer_ok(f, emb, "bf16[100, 32]");
    infer_ok(f, tok, "i32[seq]");
}

/* ---- inference: errors, one per class ------------------------------------------- */

static void test_infer_rank_errors(void **state)
{
    Fx *f = *state;
    Graph *g = f->g;
    Node *x = input(g, DT_F32, 2, (int64_t)S, (int64_t)32);
    Node *v = weight(g, DT_F32, 1, (int64_t)32);
    Node *m = weight(g, DT_F32, 2, (int64_t)32, (int64_t)32);
    Node *x3 = input(g, DT_F32, 3, (int64_t)S, (int64_t)4, (int64_t)8);
    Node *tok = input(g, DT_I32, 1, (int64_t)S);
    Node *tok0 = input(g, DT_I32, 0);

    infer_err(f, op(g, OP_LINEAR, 2, x, v), "operand 2 of 'linear' must have rank 2, got shape [32]");
    infer_err(f, op(g, OP_LINEAR, 2, x, x3), "operand 2 of 'linear' must have rank 2, got shape [seq, 4, 8]");
    infer_err(f, op(g, OP_LINEAR, 2, input(g, DT_F32, 0), m), "operand 1 of 'linear' must have rank 1 to 8, got shape []");
    infer_err(f, op(g, OP_RMS_NORM, 2, x, m), "operand 2 of 'rms_norm' must have rank 1, got shape [32, 32]");
    infer_err(f, op(g, OP_EMBEDDING, 2, v, tok), "operand 1 of 'embedding' must have rank 2, got shape [32]");
    infer_err(f, op(g, OP_EMBEDDING, 2, m, tok0), "operand 2 of 'embedding' must have rank 1 to 7, got shape []");
    infer_err(f, op(g, OP_MERGE_HEADS, 1, v), "operand 1 of 'merge_heads' must have rank 2 to 8, got shape [32]");
    infer_err(f, op(g, OP_ARGMAX, 1, v), "operand 1 of 'argmax' must have rank 2 to 8, got shape [32]");
    infer_err(f, op(g, OP_ROPE, 1, x), "operand 1 of 'rope' must have rank 3, got shape [seq, 32]");
    infer_err(f, op(g, OP_ATTENTION, 3, x3, x, x3), "operand 2 of 'attention' must have rank 3, got shape [seq, 32]");

    Node *full = input(g, DT_F32, 8, (int64_t)S, (int64_t)1, (int64_t)1, (int64_t)1, (int64_t)1, (int64_t)1,
                       (int64_t)1, (int64_t)4);
    Node *sh = op(g, OP_SPLIT_HEADS, 1, full);
    sh->a.heads = 2;
    infer_err(f, sh, "operand 1 of 'split_heads' must have rank 1 to 7, got shape [seq, 1, 1, 1, 1, 1, 1, 4]");

    /* attention wants [seq, heads, head_dim] */
    Node *noseq = input(g, DT_F32, 3, (int64_t)4, (int64_t)2, (int64_t)8);
    infer_err(f, op(g, OP_ROPE, 1, noseq), "operand 1 of 'rope' must be [seq, heads, head_dim], got [4, 2, 8]");
    infer_err(f, op(g, OP_ATTENTION, 3, x3, x3, noseq),
              "operand 3 of 'attention' must be [seq, heads, head_dim], got [4, 2, 8]");
}

static void test_infer_dtype_errors(void **state)
{
    Fx *f = *state;
    Graph *g = f->g;
    Node *x = input(g, DT_F32, 2, (int64_t)S, (int64_t)32);
    Node *ix = input(g, DT_I32, 2, (int64_t)S, (int64_t)32);
    Node *w = weight(g, DT_F32, 2, (int64_t)32, (int64_t)32);
    Node *iw = weight(g, DT_I32, 2, (int64_t)32, (int64_t)32);

    infer_err(f, op(g, OP_SILU, 1, ix), "operand 1 of 'silu' must be a float tensor, got i32");
    infer_err(f, op(g, OP_SOFTMAX, 1, ix), "operand 1 of 'softmax' must be a float tensor, got i32");
    infer_err(f, op(g, OP_ADD, 2, x, ix), "operand 2 of 'add' must be a float tensor, got i32");
    infer_err(f, op(g, OP_MUL, 2, ix, x), "operand 1 of 'mul' must be a float tensor, got i32");
    infer_err(f, op(g, OP_LINEAR, 2, x, iw), "operand 2 of 'linear' must be a float tensor, got i32");
    infer_err(f, op(g, OP_EMBEDDING, 2, iw, input(g, DT_I32, 1, (int64_t)S)),
              "operand 1 of 'embedding' must be a float tensor, got i32");
    infer_err(f, op(g, OP_EMBEDDING, 2, w, input(g, DT_F32, 1, (int64_t)S)),
              "operand 2 of 'embedding' must be i32 token ids, got f32");
    infer_err(f, op(g, OP_EMBEDDING, 2, w, input(g, DT_F16, 1, (int64_t)S)),
              "operand 2 of 'embedding' must be i32 token ids, got f16");
    infer_err(f, op(g, OP_ARGMAX, 1, ix), "operand 1 of 'argmax' must be a float tensor, got i32");
    /* an operand that never got a dtype is not a float either */
    infer_err(f, op(g, OP_SILU, 1, op(g, OP_SILU, 1, x)), "operand 1 of 'silu' must be a float tensor, got none");
}

static void test_infer_mismatch_errors(void **state)
{
    Fx *f = *state;
    Graph *g = f->g;
    Node *x = input(g, DT_F32, 2, (int64_t)S, (int64_t)32);
    Node *y = input(g, DT_F32, 2, (int64_t)S, (int64_t)16);
    Node *v = input(g, DT_F32, 1, (int64_t)32);
    Node *w = weight(g, DT_F32, 2, (int64_t)48, (int64_t)16);
    Node *n16 = weight(g, DT_F32, 1, (int64_t)16);

    infer_err(f, op(g, OP_LINEAR, 2, x, w), "'linear' inner dims differ: shapes [seq, 32] and [48, 16] do not agree");
    infer_err(f, op(g, OP_RMS_NORM, 2, x, n16),
              "'rms_norm' weight does not match the last dim: shapes [seq, 32] and [16] do not agree");
    infer_err(f, op(g, OP_ADD, 2, x, y), "'add' operands: shapes [seq, 32] and [seq, 16] do not agree");
    infer_err(f, op(g, OP_SUB, 2, x, v), "'sub' operands: shapes [seq, 32] and [32] do not agree");
    infer_err(f, op(g, OP_MUL, 2, y, x), "'mul' operands: shapes [seq, 16] and [seq, 32] do not agree");
    Node *fu = op(g, OP_FUSED, 3, x, x, y);
    fu->a.ew = (EwProg){.n = 5, .code = {EW_LOAD, EW_LOAD, EW_ADD, EW_LOAD, EW_MUL}, .arg = {0, 1, 0, 2, 0}};
    /* the operand that differs is named, not operand 2 */
    infer_err(f, fu, "'fused' operands: shapes [seq, 32] and [seq, 16] do not agree");

    /* attention: k and v agree, q and k share head_dim */
    Node *q = input(g, DT_F32, 3, (int64_t)S, (int64_t)4, (int64_t)16);
    Node *k = input(g, DT_F32, 3, (int64_t)S, (int64_t)2, (int64_t)8);
    Node *vv = input(g, DT_F32, 3, (int64_t)S, (int64_t)4, (int64_t)8);
    Node *vd = input(g, DT_F32, 3, (int64_t)S, (int64_t)2, (int64_t)16);
    infer_err(f, op(g, OP_ATTENTION, 3, q, k, vv), "'attention': k [seq, 2, 8] and v [seq, 4, 8] must have the same shape");
    infer_err(f, op(g, OP_ATTENTION, 3, q, k, vd), "'attention': k [seq, 2, 8] and v [seq, 2, 16] must have the same shape");
    infer_err(f, op(g, OP_ATTENTION, 3, q, k, k), "'attention': q [seq, 4, 16] and k [seq, 2, 8] differ in head_dim");
}

static void test_infer_split_heads_errors(void **state)
{
    Fx *f = *state;
    Graph *g = f->g;
    Node *x = input(g, DT_F32, 2, (int64_t)S, (int64_t)10);
    Node *sh = op(g, OP_SPLIT_HEADS, 1, x);
    sh->a.heads = 4;
    infer_err(f, sh, "'split_heads': last dim 10 is not divisible by 4 heads");
    sh->a.heads = 0;
    infer_err(f, sh, "'split_heads' needs a positive head count, got 0");
    sh->a.heads = -3;
    infer_err(f, sh, "'split_heads' needs a positive head count, got -3");
    sh->a.heads = 5;
    infer_ok(f, sh, "f32[seq, 5, 2]");
    sh->a.heads = 10;
    infer_ok(f, sh, "f32[seq, 10, 1]");
    /* symbolic dims are not feature dims */
    Node *ss = op(g, OP_SPLIT_HEADS, 1, input(g, DT_F32, 1, (int64_t)S));
    ss->a.heads = 2;
    infer_err(f, ss, "'split_heads' cannot split the symbolic dim seq");
    Node *sc = op(g, OP_SPLIT_HEADS, 1, input(g, DT_F32, 2, (int64_t)4, (int64_t)DIM_CTX));
    sc->a.heads = 2;
    infer_err(f, sc, "'split_heads' cannot split the symbolic dim ctx");
    infer_err(f, op(g, OP_MERGE_HEADS, 1, x), "'merge_heads' cannot merge the symbolic dim seq");
    infer_err(f, op(g, OP_MERGE_HEADS, 1, input(g, DT_F32, 3, (int64_t)S, (int64_t)2, (int64_t)DIM_BATCH)),
              "'merge_heads' cannot merge the symbolic dim batch");
    Node *ix = input(g, DT_I32, 2, (int64_t)S, (int64_t)10);
    Node *si = op(g, OP_SPLIT_HEADS, 1, ix);
    si->a.heads = 2;
    infer_err(f, si, "operand 1 of 'split_heads' must be a float tensor, got i32");
}

static void test_infer_rope_errors(void **state)
{
    Fx *f = *state;
    Graph *g = f->g;
    infer_err(f, op(g, OP_ROPE, 1, input(g, DT_F32, 3, (int64_t)S, (int64_t)2, (int64_t)5)),
              "'rope' needs an even head_dim, got 5");
    infer_err(f, op(g, OP_ROPE, 1, input(g, DT_F32, 3, (int64_t)S, (int64_t)2, (int64_t)1)),
              "'rope' needs an even head_dim, got 1");
    infer_ok(f, op(g, OP_ROPE, 1, input(g, DT_F16, 3, (int64_t)S, (int64_t)3, (int64_t)6)), "f32[seq, 3, 6]");
}

static void test_infer_attention_ratio(void **state)
{
    Fx *f = *state;
    Graph *g = f->g;
    Node *q6 = input(g, DT_F32, 3, (int64_t)S, (int64_t)6, (int64_t)8);
    Node *k4 = input(g, DT_F32, 3, (int64_t)S, (int64_t)4, (int64_t)8);
    Node *k3 = input(g, DT_F32, 3, (int64_t)S, (int64_t)3, (int64_t)8);
    Node *k6 = input(g, DT_F32, 3, (int64_t)S, (int64_t)6, (int64_t)8);
    Node *k12 = input(g, DT_F32, 3, (int64_t)S, (int64_t)12, (int64_t)8);
    infer_err(f, op(g, OP_ATTENTION, 3, q6, k4, k4), "'attention': 6 query heads are not a multiple of 4 key/value heads");
    infer_err(f, op(g, OP_ATTENTION, 3, q6, k12, k12),
              "'attention': 6 query heads are not a multiple of 12 key/value heads");
    infer_ok(f, op(g, OP_ATTENTION, 3, q6, k3, k3), "f32[seq, 6, 8]");
    infer_ok(f, op(g, OP_ATTENTION, 3, q6, k6, k6), "f32[seq, 6, 8]");
}

/* DIM_UNKNOWN (an unbound parameter) agrees with any dim, so the other checks still run. */
static void test_infer_unknown_dims(void **state)
{
    Fx *f = *state;
    Graph *g = f->g;
    Node *xu = input(g, DT_F32, 2, (int64_t)S, (int64_t)U);
    Node *x = input(g, DT_F32, 2, (int64_t)S, (int64_t)32);
    Node *w = weight(g, DT_F32, 2, (int64_t)48, (int64_t)32);
    Node *wu = weight(g, DT_F32, 2, (int64_t)U, (int64_t)U);
    Node *nu = weight(g, DT_F32, 1, (int64_t)U);

    infer_ok(f, op(g, OP_LINEAR, 2, xu, w), "f32[seq, 48]");
    infer_ok(f, op(g, OP_LINEAR, 2, x, wu), "f32[seq, ?]");
    infer_ok(f, op(g, OP_RMS_NORM, 2, x, nu), "f32[seq, 32]");
    infer_ok(f, op(g, OP_RMS_NORM, 2, xu, weight(g, DT_F32, 1, (int64_t)7)), "f32[seq, ?]");
    infer_ok(f, op(g, OP_ADD, 2, xu, x), "f32[seq, ?]");
    infer_ok(f, op(g, OP_MUL, 2, x, xu), "f32[seq, 32]");
    infer_ok(f, op(g, OP_EMBEDDING, 2, wu, input(g, DT_I32, 1, (int64_t)S)), "f32[seq, ?]");

    Node *s1 = op(g, OP_SPLIT_HEADS, 1, xu);
    s1->a.heads = 4;
    infer_ok(f, s1, "f32[seq, 4, ?]");
    Node *s2 = op(g, OP_SPLIT_HEADS, 1, x);
    s2->a.heads = U;
    infer_ok(f, s2, "f32[seq, ?, ?]");
    infer_ok(f, op(g, OP_MERGE_HEADS, 1, s1), "f32[seq, ?]");
    infer_ok(f, op(g, OP_MERGE_HEADS, 1, s2), "f32[seq, ?]");
    infer_ok(f, op(g, OP_ROPE, 1, s1), "f32[seq, 4, ?]");

    Node *qu = input(g, DT_F32, 3, (int64_t)S, (int64_t)U, (int64_t)U);
    Node *k = input(g, DT_F32, 3, (int64_t)S, (int64_t)3, (int64_t)8);
    Node *ku = input(g, DT_F32, 3, (int64_t)S, (int64_t)U, (int64_t)8);
    infer_ok(f, op(g, OP_ATTENTION, 3, qu, k, k), "f32[seq, ?, ?]");
    infer_ok(f, op(g, OP_ATTENTION, 3, input(g, DT_F32, 3, (int64_t)S, (int64_t)5, (int64_t)8), ku, k),
             "f32[seq, 5, 8]");

    /* unknown does not hide a fault elsewhere */
    infer_err(f, op(g, OP_LINEAR, 2, xu, weight(g, DT_F32, 1, (int64_t)U)),
              "operand 2 of 'linear' must have rank 2, got shape [?]");
    infer_err(f, op(g, OP_ADD, 2, xu, input(g, DT_F32, 3, (int64_t)S, (int64_t)U, (int64_t)U)),
              "'add' operands: shapes [seq, ?] and [seq, ?, ?] do not agree");
    Node *s3 = op(g, OP_SPLIT_HEADS, 1, input(g, DT_F32, 2, (int64_t)S, (int64_t)9));
    s3->a.heads = 2;
    infer_err(f, s3, "'split_heads': last dim 9 is not divisible by 2 heads");
}

/* A diagnostic points at the node's source location. */
static void test_infer_error_location(void **state)
{
    Fx *f = *state;
    Graph *g = f->g;
    static const char text[] = "model m {\n  y = linear(x, w)\n}\n";
    Source src = {.path = "m.mdl", .text = text, .len = sizeof text - 1};
    Node *x = input(g, DT_F32, 2, (int64_t)S, (int64_t)8);
    Node *w = weight(g, DT_F32, 2, (int64_t)4, (int64_t)6);
    Node *y = ir_node(g, OP_LINEAR, (SrcLoc){.src = &src, .line = 2, .col = 7}, 2, (Node *[]){x, w});
    assert_false(ir_infer_node(y, &f->d));
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    diag_print(&f->d, m);
    fclose(m);
    assert_string_equal(buf, "m.mdl:2:7: error: 'linear' inner dims differ: shapes [seq, 8] and [4, 6] do not agree\n"
                             "    2 |   y = linear(x, w)\n"
                             "      |       ^\n");
    free(buf);
}

/* ---- printer --------------------------------------------------------------------- */

static void test_print_golden(void **state)
{
    Fx *f = *state;
    Graph *g = ir_graph_new(f->a, "tiny");
    static const char text[] = "model tiny {\n  x = embedding(e, tokens)\n}\n";
    Source src = {.path = "models/sub/tiny.mdl", .text = text, .len = sizeof text - 1};
    SrcLoc at = {.src = &src, .line = 2, .col = 7};

    Node *tok = input(g, DT_I32, 1, (int64_t)S);
    tok->weight = "tokens";
    tok->name = "tokens";
    Node *e = weight(g, DT_BF16, 2, (int64_t)100, (int64_t)16);
    e->weight = "model.embed.weight";
    Node *x = ir_node(g, OP_EMBEDDING, at, 2, (Node *[]){e, tok});
    x->name = "x";
    x->buf = 0;
    Node *nw = weight(g, DT_F32, 1, (int64_t)16);
    nw->weight = "norm";
    Node *h = op(g, OP_RMS_NORM, 2, x, nw);
    h->a.eps = 1e-6;
    Node *sh = op(g, OP_SPLIT_HEADS, 1, h);
    sh->a.heads = 2;
    Node *r = op(g, OP_ROPE, 1, sh);
    r->a.rope = (RopeAttr){.theta = 500000, .llama3 = true, .factor = 8, .low_freq = 1, .high_freq = 4, .orig_ctx = 8192};
    Node *r2 = op(g, OP_ROPE, 1, sh);
    r2->a.rope.theta = 10000;
    Node *at1 = op(g, OP_ATTENTION, 3, r, r2, sh);
    at1->a.attn.causal = true;
    Node *at2 = op(g, OP_ATTENTION, 3, r, r2, sh);
    at2->a.attn.scale = 0.125;
    Node *mh = op(g, OP_MERGE_HEADS, 1, at2);
    Node *fu = op(g, OP_FUSED, 2, mh, x);
    fu->a.ew = (EwProg){.n = 4, .code = {EW_LOAD, EW_SILU, EW_LOAD, EW_SUB}, .arg = {1, 0, 0, 0}};
    Node *out = op(g, OP_ADD, 2, fu, h);
    out->output = "y";
    out->name = "ignored: output wins";
    out->buf = 3;
    Node *am = op(g, OP_ARGMAX, 1, out);
    am->name = "ids";
    for (int i = 0; i < g->n; i++)
        if (!(ir_ops[g->nodes[i]->op].flags & OPF_LEAF))
            assert_true(ir_infer_node(g->nodes[i], &f->d));

    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    ir_print(g, m);
    fclose(m);
    assert_string_equal(buf,
        "graph tiny {\n"
        "  %0 = input \"tokens\" : i32[seq]    # tokens\n"
        "  %1 = weight \"model.embed.weight\" : bf16[100, 16]\n"
        "  %2 = embedding(%1, %0) : f32[seq, 16]    # x buf=0 @ tiny.mdl:2:7\n"
        "  %3 = weight \"norm\" : f32[16]\n"
        "  %4 = rms_norm(%2, %3) {eps=1e-06} : f32[seq, 16]\n"
        "  %5 = split_heads(%4) {heads=2} : f32[seq, 2, 8]\n"
        "  %6 = rope(%5) {theta=500000 llama3 factor=8 low=1 high=4 orig_ctx=8192} : f32[seq, 2, 8]\n"
        "  %7 = rope(%5) {theta=10000} : f32[seq, 2, 8]\n"
        "  %8 = attention(%6, %7, %5) {causal=true} : f32[seq, 2, 8]\n"
        "  %9 = attention(%6, %7, %5) {causal=false scale=0.125} : f32[seq, 2, 8]\n"
        "  %10 = merge_heads(%9) : f32[seq, 16]\n"
        "  %11 = fused(%10, %2) { $1 silu $0 sub } : f32[seq, 16]\n"
        "  %12 = add(%11, %4) : f32[seq, 16]    # output y buf=3\n"
        "  %13 = argmax(%12) : i32[seq]    # ids\n"
        "}\n");
    free(buf);

    /* one node alone, and ir_shape_str */
    buf = NULL;
    m = open_memstream(&buf, &len);
    ir_print_node(x, m);
    fclose(m);
    assert_string_equal(buf, "  %2 = embedding(%1, %0) : f32[seq, 16]    # x buf=0 @ tiny.mdl:2:7\n");
    free(buf);
    assert_string_equal(ir_shape_str(f->a, sh), "[seq, 2, 8]");
    Node *odd = input(g, DT_F32, 4, (int64_t)DIM_BATCH, (int64_t)DIM_CTX, (int64_t)U, (int64_t)0);
    assert_string_equal(ir_shape_str(f->a, odd), "[batch, ctx, ?, 0]");
}

/* ---- verifier ------------------------------------------------------------------- */

/* Run ir_verify(g) in a child; return its wait status and, in err, its stderr. */
static int verify_in_child(Fx *f, const Graph *g, const char **err)
{
    char path[] = "/tmp/modelc_test_ir_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd, 2);
        /* cmocka's handlers would longjmp back into the test inside the child */
        signal(SIGABRT, SIG_DFL);
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        signal(SIGILL, SIG_DFL);
        signal(SIGFPE, SIG_DFL);
        ir_verify(g, "test");
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    FILE *fp = fdopen(fd, "r");
    assert_non_null(fp);
    rewind(fp);
    char *buf = arena_alloc(f->a, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, fp);
    buf[n] = 0;
    fclose(fp);
    unlink(path);
    *err = buf;
    return status;
}

/* ir_verify(g) aborts and its stderr names what. */
static void expect_abort(Fx *f, const Graph *g, const char *what)
{
    const char *err;
    int st = verify_in_child(f, g, &err);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT)
        fail_msg("ir_verify did not abort with SIGABRT (%s %d) for '%s'; stderr:\n%s",
                 WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), what, err);
    if (!strstr(err, what))
        fail_msg("stderr does not name '%s':\n%s", what, err);
    assert_non_null(strstr(err, "modelc: IR verification failed after pass 'test'"));
    assert_non_null(strstr(err, "internal compiler error"));
}

/* A small valid graph: %0 input, %1 weight, %2 linear, %3 silu, %4 fused. */
static Graph *valid_graph(Fx *f)
{
    Graph *g = ir_graph_new(f->a, "v");
    Node *x = input(g, DT_F32, 2, (int64_t)S, (int64_t)8);
    Node *w = weight(g, DT_F32, 2, (int64_t)8, (int64_t)8);
    Node *l = op(g, OP_LINEAR, 2, x, w);
    Node *s = op(g, OP_SILU, 1, l);
    Node *fu = op(g, OP_FUSED, 2, s, x);
    fu->a.ew = (EwProg){.n = 3, .code = {EW_LOAD, EW_LOAD, EW_MUL}, .arg = {0, 1, 0}};
    fu->output = "y";
    for (int i = 2; i < g->n; i++)
        assert_true(ir_infer_node(g->nodes[i], &f->d));
    return g;
}

static void test_verify_valid(void **state)
{
    Fx *f = *state;
    Graph *g = valid_graph(f);
    ir_verify(g, "test");    /* returns: no abort in this process */
    const char *err;
    int st = verify_in_child(f, g, &err);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_string_equal(err, "");
    /* an empty graph is valid too */
    ir_verify(ir_graph_new(f->a, "empty"), "test");
}

static void test_verify_operand_after_use(void **state)
{
    Fx *f = *state;
    Graph *g = valid_graph(f);
    /* %2 linear reads %3 silu, defined after it */
    g->nodes[2]->src[0] = g->nodes[3];
    expect_abort(f, g, "at %2: operand not defined before use");

    Graph *g2 = valid_graph(f);
    g2->nodes[3]->src[0] = g2->nodes[3];   /* reads itself */
    expect_abort(f, g2, "at %3: operand not defined before use");

    /* an operand that is not in the graph at all */
    Graph *g3 = valid_graph(f);
    Graph *other = valid_graph(f);
    g3->nodes[3]->src[0] = other->nodes[2];
    expect_abort(f, g3, "at %3: operand not defined before use");
}

static void test_verify_null_operand(void **state)
{
    Fx *f = *state;
    Graph *g = valid_graph(f);
    g->nodes[2]->src[1] = NULL;
    expect_abort(f, g, "at %2: NULL operand");
    /* the IR it prints shows the hole */
    const char *err;
    verify_in_child(f, g, &err);
    assert_non_null(strstr(err, "  %2 = linear(%0, null) : f32[seq, 8]\n"));

    /* a NULL node in the table */
    g = valid_graph(f);
    g->nodes[3] = NULL;
    expect_abort(f, g, "at %-1: node id does not match its position");
    verify_in_child(f, g, &err);
    assert_non_null(strstr(err, "  (null node at 3)\n"));
}

static void test_verify_fused_programs(void **state)
{
    Fx *f = *state;
    Graph *g = valid_graph(f);
    Node *fu = g->nodes[4];
    fu->a.ew = (EwProg){.n = 2, .code = {EW_LOAD, EW_MUL}, .arg = {0, 0}};
    expect_abort(f, g, "at %4: fused program underflows its stack");
    fu->a.ew = (EwProg){.n = 1, .code = {EW_SILU}};
    expect_abort(f, g, "at %4: fused program underflows its stack");
    fu->a.ew = (EwProg){.n = 3, .code = {EW_LOAD, EW_ADD, EW_LOAD}, .arg = {0, 0, 1}};
    expect_abort(f, g, "at %4: fused program underflows its stack");
    fu->a.ew = (EwProg){.n = 2, .code = {EW_LOAD, EW_LOAD}, .arg = {0, 1}};
    expect_abort(f, g, "at %4: fused program leaves more than one value");
    fu->a.ew = (EwProg){.n = 0};
    expect_abort(f, g, "at %4: fused program leaves more than one value");
    fu->a.ew = (EwProg){.n = 3, .code = {EW_LOAD, EW_LOAD, EW_ADD}, .arg = {0, 2, 0}};
    expect_abort(f, g, "at %4: fused program loads a missing operand");
    /* back to a good one: fine again */
    fu->a.ew = (EwProg){.n = 4, .code = {EW_LOAD, EW_SILU, EW_LOAD, EW_SUB}, .arg = {1, 0, 0, 0}};
    ir_verify(g, "test");
}

static void test_verify_other_faults(void **state)
{
    Fx *f = *state;
    Graph *g = valid_graph(f);
    g->nodes[3]->id = 7;
    expect_abort(f, g, "at %7: node id does not match its position");

    g = valid_graph(f);
    g->nodes[1]->nsrc = 1;
    g->nodes[1]->src[0] = g->nodes[0];
    expect_abort(f, g, "at %1: leaf with operands");

    g = valid_graph(f);
    g->nodes[3]->nsrc = 0;
    expect_abort(f, g, "at %3: op without operands");

    g = valid_graph(f);
    g->nodes[3]->rank = IR_MAX_RANK + 1;
    expect_abort(f, g, "at %3: bad rank");

    g = valid_graph(f);
    g->nodes[3]->dt = DT_NONE;
    expect_abort(f, g, "at %3: shape without dtype");

    g = valid_graph(f);
    g->nodes[3]->op = OP_COUNT;
    expect_abort(f, g, "at %3: unknown op");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_node_construction),
        T(test_renumber_and_uses),
        T(test_numel_per_tok),
        T(test_op_table),
        T(test_ew_program),
        T(test_infer_shapes),
        T(test_infer_rank_errors),
        T(test_infer_dtype_errors),
        T(test_infer_mismatch_errors),
        T(test_infer_split_heads_errors),
        T(test_infer_rope_errors),
        T(test_infer_attention_ratio),
        T(test_infer_unknown_dims),
        T(test_infer_error_location),
        T(test_print_golden),
        T(test_verify_valid),
        T(test_verify_operand_after_use),
        T(test_verify_null_operand),
        T(test_verify_fused_programs),
        T(test_verify_other_faults),
    };
    return cmocka_run_group_tests_name("ir", tests, NULL, NULL);
}
