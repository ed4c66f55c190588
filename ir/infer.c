/* ir/infer.c — shape and dtype inference, one function per op (named in ops.def).
 *
 * Each function reads its operands' dtypes and shapes, checks them, and fills
 * n->dt, n->rank and n->shape.  A disagreement is the user's error: it is
 * reported at the node's source location and the function returns false.
 * DIM_UNKNOWN (a parameter not bound yet, as in `modelc check` without a
 * config) agrees with any dim, so unbound specs still get every other check.
 * Activations are computed in f32 whatever the weights hold. */
#include "ir/ir.h"

#include <string.h>

typedef bool InferFn(Node *n, Diags *d);

static bool dim_agree(int64_t a, int64_t b)
{
    return a == b || a == DIM_UNKNOWN || b == DIM_UNKNOWN;
}

static const char *dim_str(char *buf, size_t cap, int64_t d)
{
    switch (d) {
    case DIM_SEQ: return "seq";
    case DIM_BATCH: return "batch";
    case DIM_CTX: return "ctx";
    case DIM_UNKNOWN: return "?";
    }
    snprintf(buf, cap, "%lld", (long long)d);
    return buf;
}

static const char *shape_str(char *out, size_t cap, const Node *n)
{
    size_t k = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < n->rank && k < cap; i++) {
        char b[32];
        k += (size_t)snprintf(out + k, cap - k, "%s%s", i ? ", " : "", dim_str(b, sizeof b, n->shape[i]));
    }
    if (k < cap)
        snprintf(out + k, cap - k, "]");
    return out;
}

char *ir_shape_str(Arena *a, const Node *n)
{
    char buf[256];
    return arena_strdup(a, shape_str(buf, sizeof buf, n));
}

static void set_shape(Node *n, DType dt, int rank, const int64_t *shape)
{
    n->dt = dt;
    n->rank = rank;
    memcpy(n->shape, shape, (size_t)rank * sizeof *shape);
}

static bool need_float(Node *n, int i, Diags *d)
{
    if (ir_is_float(n->src[i]->dt))
        return true;
    diag_error(d, n->loc, "operand %d of '%s' must be a float tensor, got %s", i + 1, ir_op_name(n->op),
               ir_dtype_name(n->src[i]->dt));
    return false;
}

/* A weight operand: a float tensor, or ggml blocks of 32 along its last dim. */
static bool need_weight(Node *n, int i, Diags *d)
{
    Node *w = n->src[i];
    if (!ir_block_bytes(w->dt))
        return need_float(n, i, d);
    int64_t last = w->rank ? w->shape[w->rank - 1] : 0;
    if (last >= 0 && last % 32) {
        diag_error(d, n->loc, "operand %d of '%s' is %s, whose rows must be whole blocks of 32, got %lld",
                   i + 1, ir_op_name(n->op), ir_dtype_name(w->dt), (long long)last);
        return false;
    }
    return true;
}

static bool need_rank(Node *n, int i, int lo, int hi, Diags *d)
{
    int r = n->src[i]->rank;
    if (r >= lo && r <= hi)
        return true;
    char s[256];
    if (lo == hi)
        diag_error(d, n->loc, "operand %d of '%s' must have rank %d, got shape %s", i + 1, ir_op_name(n->op), lo,
                   shape_str(s, sizeof s, n->src[i]));
    else
        diag_error(d, n->loc, "operand %d of '%s' must have rank %d to %d, got shape %s", i + 1, ir_op_name(n->op),
                   lo, hi, shape_str(s, sizeof s, n->src[i]));
    return false;
}

/* operands i and j of n disagree */
static bool mismatch_at(Node *n, int i, int j, const char *what, Diags *d)
{
    char s0[256], s1[256];
    diag_error(d, n->loc, "'%s' %s: shapes %s and %s do not agree", ir_op_name(n->op), what,
               shape_str(s0, sizeof s0, n->src[i]), shape_str(s1, sizeof s1, n->src[j]));
    return false;
}

static bool mismatch(Node *n, const char *what, Diags *d)
{
    return mismatch_at(n, 0, 1, what, d);
}

static bool infer_leaf(Node *n, Diags *d)
{
    (void)n, (void)d;
    return true;
}

/* embedding(table [V, D], ids i32[...]) -> f32 [..., D] */
static bool infer_embedding(Node *n, Diags *d)
{
    Node *t = n->src[0], *ids = n->src[1];
    if (!need_weight(n, 0, d) || !need_rank(n, 0, 2, 2, d) || !need_rank(n, 1, 1, IR_MAX_RANK - 1, d))
        return false;
    if (ids->dt != DT_I32) {
        diag_error(d, n->loc, "operand 2 of 'embedding' must be i32 token ids, got %s", ir_dtype_name(ids->dt));
        return false;
    }
    set_shape(n, DT_F32, ids->rank, ids->shape);
    n->shape[n->rank++] = t->shape[1];
    return true;
}

/* rms_norm(x [..., D], w [D], eps) -> f32 [..., D] */
static bool infer_rms_norm(Node *n, Diags *d)
{
    Node *x = n->src[0], *w = n->src[1];
    if (!need_float(n, 0, d) || !need_float(n, 1, d) || !need_rank(n, 1, 1, 1, d))
        return false;
    if (x->rank < 1 || !dim_agree(x->shape[x->rank - 1], w->shape[0]))
        return mismatch(n, "weight does not match the last dim", d);
    set_shape(n, DT_F32, x->rank, x->shape);
    return true;
}

/* linear(x [..., K], w [N, K]) -> f32 [..., N]; x may be q8_1 (pass
 * "quantize") when w is a block type */
static bool infer_linear(Node *n, Diags *d)
{
    Node *x = n->src[0], *w = n->src[1];
    bool q8 = x->dt == DT_Q8_1 && ir_block_bytes(w->dt);
    if ((!q8 && !need_float(n, 0, d)) || !need_weight(n, 1, d) || !need_rank(n, 0, 1, IR_MAX_RANK, d) ||
        !need_rank(n, 1, 2, 2, d))
        return false;
    if (!dim_agree(x->shape[x->rank - 1], w->shape[1]))
        return mismatch(n, "inner dims differ", d);
    set_shape(n, DT_F32, x->rank, x->shape);
    n->shape[n->rank - 1] = w->shape[0];
    return true;
}

/* split_heads(x [..., H*Dh], H) -> [..., H, Dh] */
static bool infer_split_heads(Node *n, Diags *d)
{
    Node *x = n->src[0];
    if (!need_float(n, 0, d) || !need_rank(n, 0, 1, IR_MAX_RANK - 1, d))
        return false;
    int64_t last = x->shape[x->rank - 1], h = n->a.heads;
    char b[32];
    if (last < 0 && last != DIM_UNKNOWN) {
        diag_error(d, n->loc, "'split_heads' cannot split the symbolic dim %s", dim_str(b, sizeof b, last));
        return false;
    }
    if (h <= 0 && h != DIM_UNKNOWN) {
        diag_error(d, n->loc, "'split_heads' needs a positive head count, got %lld", (long long)h);
        return false;
    }
    if (last >= 0 && h > 0 && last % h) {
        diag_error(d, n->loc, "'split_heads': last dim %lld is not divisible by %lld heads", (long long)last,
                   (long long)h);
        return false;
    }
    set_shape(n, x->dt, x->rank, x->shape);
    n->shape[n->rank - 1] = h;
    n->shape[n->rank++] = last >= 0 && h > 0 ? last / h : DIM_UNKNOWN;
    return true;
}

/* merge_heads(x [..., H, Dh]) -> [..., H*Dh] */
static bool infer_merge_heads(Node *n, Diags *d)
{
    Node *x = n->src[0];
    if (!need_float(n, 0, d) || !need_rank(n, 0, 2, IR_MAX_RANK, d))
        return false;
    int64_t h = x->shape[x->rank - 2], dh = x->shape[x->rank - 1];
    char b[32];
    if ((h < 0 && h != DIM_UNKNOWN) || (dh < 0 && dh != DIM_UNKNOWN)) {
        diag_error(d, n->loc, "'merge_heads' cannot merge the symbolic dim %s",
                   dim_str(b, sizeof b, h < 0 && h != DIM_UNKNOWN ? h : dh));
        return false;
    }
    set_shape(n, x->dt, x->rank - 1, x->shape);
    n->shape[n->rank - 1] = h >= 0 && dh >= 0 ? h * dh : DIM_UNKNOWN;
    return true;
}

static bool need_seq_heads(Node *n, int i, Diags *d)
{
    if (!need_float(n, i, d) || !need_rank(n, i, 3, 3, d))
        return false;
    if (n->src[i]->shape[0] != DIM_SEQ) {
        char s[256];
        diag_error(d, n->loc, "operand %d of '%s' must be [seq, heads, head_dim], got %s", i + 1, ir_op_name(n->op),
                   shape_str(s, sizeof s, n->src[i]));
        return false;
    }
    return true;
}

/* rope(x [seq, H, Dh]) -> f32 [seq, H, Dh], Dh even */
static bool infer_rope(Node *n, Diags *d)
{
    Node *x = n->src[0];
    if (!need_seq_heads(n, 0, d))
        return false;
    if (x->shape[2] >= 0 && x->shape[2] % 2) {
        diag_error(d, n->loc, "'rope' needs an even head_dim, got %lld", (long long)x->shape[2]);
        return false;
    }
    set_shape(n, DT_F32, 3, x->shape);
    return true;
}

/* attention(q [seq, Hq, Dh], k [seq, Hkv, Dh], v [seq, Hkv, Dh]) -> f32 [seq, Hq, Dh] */
static bool infer_attention(Node *n, Diags *d)
{
    Node *q = n->src[0], *k = n->src[1], *v = n->src[2];
    for (int i = 0; i < 3; i++)
        if (!need_seq_heads(n, i, d))
            return false;
    char s0[256], s1[256];
    if (!dim_agree(k->shape[1], v->shape[1]) || !dim_agree(k->shape[2], v->shape[2])) {
        diag_error(d, n->loc, "'attention': k %s and v %s must have the same shape", shape_str(s0, sizeof s0, k),
                   shape_str(s1, sizeof s1, v));
        return false;
    }
    if (!dim_agree(q->shape[2], k->shape[2])) {
        diag_error(d, n->loc, "'attention': q %s and k %s differ in head_dim", shape_str(s0, sizeof s0, q),
                   shape_str(s1, sizeof s1, k));
        return false;
    }
    int64_t hq = q->shape[1], hkv = k->shape[1];
    if (hq >= 0 && hkv >= 0 && (hkv == 0 || hq % hkv)) {
        diag_error(d, n->loc, "'attention': %lld query heads are not a multiple of %lld key/value heads",
                   (long long)hq, (long long)hkv);
        return false;
    }
    set_shape(n, DT_F32, 3, q->shape);
    return true;
}

static bool infer_unary(Node *n, Diags *d)
{
    if (!need_float(n, 0, d))
        return false;
    set_shape(n, DT_F32, n->src[0]->rank, n->src[0]->shape);
    return true;
}

static bool same_shape(const Node *a, const Node *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (!dim_agree(a->shape[i], b->shape[i]))
            return false;
    return true;
}

static bool infer_binary(Node *n, Diags *d)
{
    if (!need_float(n, 0, d) || !need_float(n, 1, d))
        return false;
    if (!same_shape(n->src[0], n->src[1]))
        return mismatch(n, "operands", d);
    set_shape(n, DT_F32, n->src[0]->rank, n->src[0]->shape);
    return true;
}

/* linear_ew(x, W_0..W_{nw-1}, E...) (pass "epilogue"): the products x W_i^T
 * [..., N] combined elementwise with operands E of that shape. */
static bool infer_linear_ew(Node *n, Diags *d)
{
    Node *x = n->src[0];
    int nw = n->a.lew.nw;
    if (!need_float(n, 0, d) || !need_rank(n, 0, 1, IR_MAX_RANK, d))
        return false;
    for (int i = 1; i <= nw; i++) {
        if (!need_weight(n, i, d) || !need_rank(n, i, 2, 2, d))
            return false;
        if (!dim_agree(x->shape[x->rank - 1], n->src[i]->shape[1]) || n->src[i]->shape[0] != n->src[1]->shape[0])
            return mismatch(n, "inner dims differ", d);
    }
    set_shape(n, DT_F32, x->rank, x->shape);
    n->shape[n->rank - 1] = n->src[1]->shape[0];
    for (int i = 1 + nw; i < n->nsrc; i++)
        if (!same_shape(n, n->src[i]))
            return mismatch_at(n, 0, i, "operands", d);
    return true;
}

/* quantize(x [..., K]) -> q8_1 [..., K] (pass "quantize"; K whole blocks of 32) */
static bool infer_quantize(Node *n, Diags *d)
{
    Node *x = n->src[0];
    if (!need_float(n, 0, d) || !need_rank(n, 0, 1, IR_MAX_RANK, d))
        return false;
    int64_t K = x->shape[x->rank - 1];
    if (K >= 0 && K % 32) {
        diag_error(d, n->loc, "'quantize' needs rows of whole blocks of 32, got %lld", (long long)K);
        return false;
    }
    set_shape(n, DT_Q8_1, x->rank, x->shape);
    return true;
}

static bool infer_fused(Node *n, Diags *d)
{
    for (int i = 1; i < n->nsrc; i++)
        if (!same_shape(n->src[0], n->src[i]))
            return mismatch_at(n, 0, i, "operands", d);
    set_shape(n, DT_F32, n->src[0]->rank, n->src[0]->shape);
    return true;
}

/* argmax(x [..., N]) -> i32 [...] (rank >= 2 keeps the leading dims) */
static bool infer_argmax(Node *n, Diags *d)
{
    if (!need_float(n, 0, d) || !need_rank(n, 0, 2, IR_MAX_RANK, d))
        return false;
    set_shape(n, DT_I32, n->src[0]->rank - 1, n->src[0]->shape);
    return true;
}

static InferFn *const infer_table[OP_COUNT] = {
#define OP(id, name, sig, kw, flags, infer, emit) [OP_##id] = infer,
#include "ir/ops.def"
#undef OP
};

bool ir_infer_node(Node *n, Diags *d)
{
    return infer_table[n->op](n, d);
}
