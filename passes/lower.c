/* passes/lower.c — pass "lower": the checked AST becomes graph IR.
 *
 * Requires: a module that fe_check accepted.
 * Guarantees: a graph whose leaves are inputs and weights (with shapes and
 * dtypes) and whose other nodes carry operands and attributes, not yet
 * shapes (pass "infer" adds those); every repeat block expanded once per
 * iteration; every parameter evaluated from config.json, --set, or its
 * default.  Parameters with no value (no config given) evaluate to "unknown"
 * and give DIM_UNKNOWN dims, so `modelc check` works on a bare spec.
 *
 * Values are scalars (int, float, bool, string) or tensors (graph nodes).
 * A config() lookup that finds nothing is "missing": `a ?? b` falls back to b,
 * anywhere else it is an error naming the key. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"

typedef enum { V_UNKNOWN, V_MISSING, V_INT, V_FLOAT, V_BOOL, V_STR, V_TENSOR } VKind;

typedef struct Value {
    VKind k;
    int64_t i;
    double f;
    const char *s;
    Node *t;
    bool is_weight;     /* V_TENSOR bound by a weight statement */
} Value;

typedef struct Binding {
    const char *name;
    Value v;
    struct Binding *next;
} Binding;

typedef struct Scope {
    Binding *head;
    struct Scope *parent;
} Scope;

typedef struct Lower {
    Compilation *c;
    Graph *g;
    Scope *scope;
    int layer;
    bool failed;
    bool too_big;            /* past LOWER_MAX_NODES or LOWER_MAX_ITERATIONS: lowering stops */
    int64_t iterations;      /* repeat iterations so far, nested ones included */
    const char *cfg_key;     /* the first config key the current statement read */
    Node **weights;          /* weight nodes by checkpoint name: open addressing, wcap slots */
    size_t nweights, wcap;
    char *cfg_values;        /* Compilation.config_values, growing */
    bool *set_used;
} Lower;


static Value unknown(void) { return (Value){.k = V_UNKNOWN}; }

static Value error_at(Lower *L, SrcLoc loc, const char *fmt, const char *a, const char *b)
{
    diag_error(L->c->diags, loc, fmt, a, b);
    L->failed = true;
    return unknown();
}

static Binding *lookup(Lower *L, const char *name)
{
    for (Scope *s = L->scope; s; s = s->parent)
        for (Binding *b = s->head; b; b = b->next)
            if (!strcmp(b->name, name))
                return b;
    return NULL;
}

static void define(Lower *L, const char *name, Value v)
{
    Binding *b = arena_alloc(L->c->arena, sizeof *b);
    b->name = name;
    b->v = v;
    b->next = L->scope->head;
    L->scope->head = b;
}

/* Assignment rebinds the nearest existing binding, else defines locally. */
static void assign(Lower *L, const char *name, Value v)
{
    Binding *b = lookup(L, name);
    if (b)
        b->v = v;
    else
        define(L, name, v);
}

static bool is_num(Value v) { return v.k == V_INT || v.k == V_FLOAT; }
static double num(Value v) { return v.k == V_INT || v.k == V_BOOL ? (double)v.i : v.f; }

static Value eval(Lower *L, const Expr *e);
static Value eval_opt(Lower *L, const Expr *e);

/* ---- config ------------------------------------------------------------ */

static Value from_config(Lower *L, const Expr *call, const char *key)
{
    RtCfgValue cv = rt_config_get(L->c->env->config, key);
    if (!L->cfg_key && cv.kind != CFG_MISSING && cv.kind != CFG_NULL)
        L->cfg_key = key;
    switch (cv.kind) {
    case CFG_MISSING:
    case CFG_NULL: return (Value){.k = V_MISSING};
    case CFG_BOOL: return (Value){.k = V_BOOL, .i = cv.b};
    case CFG_INT: return (Value){.k = V_INT, .i = cv.i, .f = cv.f};
    case CFG_FLOAT: return (Value){.k = V_FLOAT, .f = cv.f};
    case CFG_STRING: return (Value){.k = V_STR, .s = arena_strdup(L->c->arena, cv.s)};
    case CFG_OTHER: break;
    }
    return error_at(L, call->loc, "%s: key '%s' is an array or object, not a number, bool or string",
                    L->c->env->config_path ? L->c->env->config_path : "config", key);
}

/* config("key") / config("key", default).  Missing keys give V_MISSING when
 * there is no default; with no config at all they give V_UNKNOWN. */
static Value eval_config(Lower *L, const Expr *e)
{
    const char *key = e->args[0].value->sval;
    Value v = L->c->env->config ? from_config(L, e, key) : (Value){.k = V_MISSING};
    if (v.k == V_MISSING && e->nargs > 1)
        return eval(L, e->args[1].value);
    if (v.k == V_MISSING && !L->c->env->config)
        return (Value){.k = V_MISSING, .s = key, .i = 1};   /* i=1: missing because unbound */
    if (v.k == V_MISSING)
        v.s = key;
    return v;
}

/* ---- scalars ----------------------------------------------------------- */

static Value arith(Lower *L, const Expr *e, Value a, Value b)
{
    if (a.k == V_UNKNOWN || b.k == V_UNKNOWN)
        return unknown();
    int op = e->op;
    if (op == BIN_EQ || op == BIN_NE) {
        bool eq;
        if (a.k == V_STR || b.k == V_STR)
            eq = a.k == b.k && !strcmp(a.s, b.s);
        else
            eq = num(a) == num(b);
        return (Value){.k = V_BOOL, .i = (op == BIN_EQ) == eq};
    }
    if (op == BIN_AND || op == BIN_OR) {
        bool x = num(a) != 0, y = num(b) != 0;
        return (Value){.k = V_BOOL, .i = op == BIN_AND ? (x && y) : (x || y)};
    }
    if ((a.k != V_INT && a.k != V_FLOAT && a.k != V_BOOL) || (b.k != V_INT && b.k != V_FLOAT && b.k != V_BOOL))
        return error_at(L, e->loc, "operator needs numbers%s%s", "", "");
    if (op == '<' || op == '>' || op == BIN_LE || op == BIN_GE) {
        double x = num(a), y = num(b);
        bool r = op == '<' ? x < y : op == '>' ? x > y : op == BIN_LE ? x <= y : x >= y;
        return (Value){.k = V_BOOL, .i = r};
    }
    if (a.k == V_INT && b.k == V_INT) {
        int64_t x = a.i, y = b.i, r;
        switch (op) {
        case '+': if (__builtin_add_overflow(x, y, &r)) goto overflow; break;
        case '-': if (__builtin_sub_overflow(x, y, &r)) goto overflow; break;
        case '*': if (__builtin_mul_overflow(x, y, &r)) goto overflow; break;
        case '/':
        case '%':
            if (y == 0)
                return error_at(L, e->loc, "division by zero%s%s", "", "");
            if (x == INT64_MIN && y == -1)
                goto overflow;
            r = op == '/' ? x / y : x % y;
            break;
        default: IR_BUG("binary op %d", op);
        }
        return (Value){.k = V_INT, .i = r, .f = (double)r};
    overflow:
        return error_at(L, e->loc, "integer overflow in parameter arithmetic%s%s", "", "");
    }
    double x = num(a), y = num(b), r;
    switch (op) {
    case '+': r = x + y; break;
    case '-': r = x - y; break;
    case '*': r = x * y; break;
    case '/':
        if (y == 0)
            return error_at(L, e->loc, "division by zero%s%s", "", "");
        r = x / y;
        break;
    case '%':
        if (y == 0)
            return error_at(L, e->loc, "division by zero%s%s", "", "");
        r = fmod(x, y);
        break;
    default: IR_BUG("binary op %d", op);
    }
    return (Value){.k = V_FLOAT, .f = r};
}

/* ---- tensors ----------------------------------------------------------- */

static Node *node(Lower *L, OpKind op, SrcLoc loc, int nsrc, Node **src)
{
    Node *n = ir_node(L->g, op, loc, nsrc, src);
    n->layer = L->layer;
    return n;
}

static Value tensor(Node *n) { return (Value){.k = V_TENSOR, .t = n}; }

static double kw_num(Lower *L, const Expr *e, const char *kw, double dflt, bool *given)
{
    for (int i = 0; i < e->nargs; i++)
        if (e->args[i].kw && !strcmp(e->args[i].kw, kw)) {
            Value v = eval(L, e->args[i].value);
            if (given)
                *given = v.k != V_UNKNOWN;
            if (v.k == V_UNKNOWN)
                return dflt;
            if (!is_num(v) && v.k != V_BOOL) {
                error_at(L, e->args[i].value->loc, "'%s' must be a number%s", kw, "");
                return dflt;
            }
            return num(v);
        }
    if (given)
        *given = false;
    return dflt;
}

static const char *kw_str(Lower *L, const Expr *e, const char *kw, const char *dflt)
{
    for (int i = 0; i < e->nargs; i++)
        if (e->args[i].kw && !strcmp(e->args[i].kw, kw)) {
            Value v = eval(L, e->args[i].value);
            if (v.k == V_STR)
                return v.s;
            if (v.k != V_UNKNOWN)
                error_at(L, e->args[i].value->loc, "'%s' must be a string%s", kw, "");
            return dflt;
        }
    return dflt;
}

static Value eval_op(Lower *L, const Expr *e, OpKind op)
{
    const char *sig = ir_ops[op].sig;
    Node *src[IR_MAX_SRC];
    Value scalars[4];
    int nsrc = 0, nscalar = 0, pos = 0;
    for (int i = 0; i < e->nargs; i++) {
        if (e->args[i].kw)
            continue;
        Value v = eval(L, e->args[i].value);
        if (sig[pos] == 'T') {
            if (v.k != V_TENSOR)
                return unknown();   /* an error was reported (or sema let an unknown through) */
            src[nsrc++] = v.t;
        } else {
            scalars[nscalar++] = v;
        }
        pos++;
    }
    if (L->failed)
        return unknown();
    Node *n = node(L, op, e->loc, nsrc, src);
    switch (op) {
    case OP_RMS_NORM:
        n->a.eps = is_num(scalars[0]) ? num(scalars[0]) : 1e-5;
        if (is_num(scalars[0]) && !(n->a.eps >= 0))
            error_at(L, e->args[2].value->loc, "rms_norm eps must be >= 0%s%s", "", "");
        break;
    case OP_SPLIT_HEADS:
        if (scalars[0].k == V_INT)
            n->a.heads = scalars[0].i;
        else if (scalars[0].k == V_UNKNOWN)
            n->a.heads = DIM_UNKNOWN;
        else
            error_at(L, e->args[1].value->loc, "the head count must be an integer%s%s", "", "");
        break;
    case OP_ROPE: {
        RopeAttr *r = &n->a.rope;
        r->theta = kw_num(L, e, "theta", 10000.0, NULL);
        const char *type = kw_str(L, e, "type", "default");
        if (!strcmp(type, "llama3")) {
            r->llama3 = true;
            r->factor = kw_num(L, e, "factor", 8.0, NULL);
            r->low_freq = kw_num(L, e, "low_freq", 1.0, NULL);
            r->high_freq = kw_num(L, e, "high_freq", 4.0, NULL);
            r->orig_ctx = (int64_t)kw_num(L, e, "orig_ctx", 8192, NULL);
            if (!(r->factor > 0) || !(r->low_freq > 0) || !(r->high_freq > r->low_freq) || r->orig_ctx <= 0)
                error_at(L, e->loc, "llama3 rope scaling needs factor > 0, 0 < low_freq < high_freq, orig_ctx > 0%s%s",
                         "", "");
        } else if (strcmp(type, "default")) {
            error_at(L, e->loc, "rope type '%s' is not supported (supported: %s)", type, "default, llama3");
        }
        if (!(r->theta > 0))
            error_at(L, e->loc, "rope theta must be positive%s%s", "", "");
        break;
    }
    case OP_ATTENTION:
        n->a.attn.causal = kw_num(L, e, "causal", 1, NULL) != 0;
        n->a.attn.scale = kw_num(L, e, "scale", 0, NULL);
        break;
    default: break;
    }
    return tensor(n);
}

static Value eval_call(Lower *L, const Expr *e)
{
    if (!strcmp(e->name, "config"))
        return eval_config(L, e);
    for (int op = 0; op < OP_COUNT; op++)
        if (ir_ops[op].name[0] && !strcmp(ir_ops[op].name, e->name))
            return eval_op(L, e, (OpKind)op);
    IR_BUG("sema let unknown op '%s' through", e->name);
}

static Value eval_binary(Lower *L, const Expr *e)
{
    Value a = eval(L, e->a), b = eval(L, e->b);
    if (a.k == V_TENSOR && b.k == V_TENSOR) {
        OpKind op = e->op == '+' ? OP_ADD : e->op == '-' ? OP_SUB : OP_MUL;
        IR_ASSERT(e->op == '+' || e->op == '-' || e->op == '*');
        return tensor(node(L, op, e->loc, 2, (Node *[]){a.t, b.t}));
    }
    if (a.k == V_TENSOR || b.k == V_TENSOR)
        return unknown();    /* sema reported it */
    return arith(L, e, a, b);
}

/* eval_opt: like eval, but a config() lookup that found nothing yields
 * V_MISSING instead of an error (for the left side of ??). */
static Value eval_opt(Lower *L, const Expr *e)
{
    if (e->kind == EX_CALL && !strcmp(e->name, "config"))
        return eval_config(L, e);
    if (e->kind == EX_COALESCE) {
        Value a = eval_opt(L, e->a);
        return a.k == V_MISSING ? eval_opt(L, e->b) : a;
    }
    return eval(L, e);
}

static Value eval(Lower *L, const Expr *e)
{
    switch (e->kind) {
    case EX_INT: return (Value){.k = V_INT, .i = e->ival, .f = (double)e->ival};
    case EX_FLOAT: return (Value){.k = V_FLOAT, .f = e->fval};
    case EX_BOOL: return (Value){.k = V_BOOL, .i = e->ival};
    case EX_STRING: return (Value){.k = V_STR, .s = e->sval};
    case EX_NAME: {
        Binding *b = lookup(L, e->name);
        if (!b)
            return error_at(L, e->loc, "'%s' has no value here%s", e->name, "");
        return b->v;
    }
    case EX_CALL:
        if (strcmp(e->name, "config"))
            return eval_call(L, e);
        /* fall through */
    case EX_COALESCE: {
        Value v = eval_opt(L, e);
        if (v.k != V_MISSING)
            return v;
        if (v.i == 1)       /* no config given at all: leave it unknown */
            return unknown();
        return error_at(L, e->loc, "%s has no key '%s' and the spec gives no default",
                        L->c->env->config_path ? L->c->env->config_path : "config.json", v.s);
    }
    case EX_UNARY: {
        Value a = eval(L, e->a);
        if (a.k == V_UNKNOWN)
            return a;
        if (e->op == '!')
            return (Value){.k = V_BOOL, .i = !num(a)};
        if (a.k == V_INT) {
            if (a.i == INT64_MIN)
                return error_at(L, e->loc, "integer overflow%s%s", "", "");
            return (Value){.k = V_INT, .i = -a.i, .f = -(double)a.i};
        }
        return (Value){.k = V_FLOAT, .f = -num(a)};
    }
    case EX_BINARY: return eval_binary(L, e);
    case EX_TERNARY: {
        Value c = eval(L, e->a);
        if (c.k == V_UNKNOWN) {
            /* Unbound condition: a tensor takes the else branch (the graph
             * needs one); a scalar is unknown unless both branches agree. */
            Value no = eval(L, e->c);
            if (no.k == V_TENSOR || no.k == V_UNKNOWN)
                return no;
            Value yes = eval(L, e->b);
            bool same = yes.k == no.k && (no.k == V_STR ? !strcmp(yes.s, no.s) : num(yes) == num(no));
            return same ? no : unknown();
        }
        bool t = c.k == V_STR ? c.s[0] != 0 : num(c) != 0;
        return eval(L, t ? e->b : e->c);
    }
    }
    IR_BUG("expr kind %d", e->kind);
}

/* ---- statements -------------------------------------------------------- */

/* Expand {name} placeholders with integer values in scope. */
static const char *expand(Lower *L, const Expr *e)
{
    const char *s = e->sval;
    size_t cap = strlen(s) + 64, k = 0;
    char *out = arena_alloc(L->c->arena, cap);
    for (const char *p = s; *p;) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        if (close) {
            char *name = arena_strndup(L->c->arena, p + 1, (size_t)(close - p - 1));
            Binding *b = lookup(L, name);
            if (b && b->v.k == V_INT) {
                char num_s[32];
                int n = snprintf(num_s, sizeof num_s, "%lld", (long long)b->v.i);
                if (k + (size_t)n + strlen(close) + 1 > cap) {
                    char *bigger = arena_alloc(L->c->arena, cap * 2 + (size_t)n);
                    memcpy(bigger, out, k);
                    out = bigger;
                    cap = cap * 2 + (size_t)n;
                }
                memcpy(out + k, num_s, (size_t)n);
                k += (size_t)n;
                p = close + 1;
                continue;
            }
        }
        if (k + 2 > cap) {
            char *bigger = arena_alloc(L->c->arena, cap * 2);
            memcpy(bigger, out, k);
            out = bigger;
            cap *= 2;
        }
        out[k++] = *p++;
    }
    out[k] = 0;
    return out;
}

static int64_t eval_dim(Lower *L, const Expr *e)
{
    if (e->kind == EX_NAME && !lookup(L, e->name)) {
        if (!strcmp(e->name, "seq"))
            return DIM_SEQ;
        if (!strcmp(e->name, "batch"))
            return DIM_BATCH;
        if (!strcmp(e->name, "ctx"))
            return DIM_CTX;
    }
    Value v = eval(L, e);
    if (v.k == V_UNKNOWN)
        return DIM_UNKNOWN;
    if (v.k != V_INT) {
        error_at(L, e->loc, "a dimension must be an integer%s%s", "", "");
        return DIM_UNKNOWN;
    }
    if (v.i <= 0 || v.i > ((int64_t)1 << 40)) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)v.i);
        error_at(L, e->loc, "dimension %s is out of range (1 to 2^40)%s", buf, "");
        return DIM_UNKNOWN;
    }
    return v.i;
}

static DType dtype_of(TypeDType t)
{
    switch (t) {
    case TY_F32: return DT_F32;
    case TY_F16: return DT_F16;
    case TY_BF16: return DT_BF16;
    case TY_I32: return DT_I32;
    case TY_ANY: return DT_NONE;
    }
    return DT_NONE;
}

static void type_shape(Lower *L, const TypeExpr *t, Node *n)
{
    n->rank = t->rank;
    for (int i = 0; i < t->rank; i++)
        n->shape[i] = eval_dim(L, t->dims[i]);
}

static DType from_rt(RtDType t)
{
    switch (t) {
    case RT_F32: return DT_F32;
    case RT_F16: return DT_F16;
    case RT_BF16: return DT_BF16;
    case RT_Q8_0: return DT_Q8_0;
    case RT_Q4_0: return DT_Q4_0;
    case RT_Q4_1: return DT_Q4_1;
    default: return DT_NONE;
    }
}

/* Find an existing weight node for a checkpoint name (tied weights share one). */
static size_t name_hash(const char *s)
{
    size_t h = 14695981039346656037u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

/* The weight node of a checkpoint name, or the empty slot it would take. */
static Node **weight_slot(Lower *L, const char *name)
{
    size_t k = name_hash(name) & (L->wcap - 1);
    while (L->weights[k] && strcmp(L->weights[k]->weight, name))
        k = (k + 1) & (L->wcap - 1);
    return &L->weights[k];
}

static Node *find_weight(Lower *L, const char *name)
{
    return L->wcap ? *weight_slot(L, name) : NULL;
}

static void add_weight(Lower *L, Node *w)
{
    if (2 * (L->nweights + 1) > L->wcap) {   /* grow: rehash into twice the slots */
        Node **old = L->weights;
        size_t n = L->wcap;
        L->wcap = n ? 2 * n : 64;
        L->weights = arena_alloc(L->c->arena, L->wcap * sizeof *L->weights);
        for (size_t i = 0; i < n; i++)
            if (old[i])
                *weight_slot(L, old[i]->weight) = old[i];
    }
    *weight_slot(L, w->weight) = w;
    L->nweights++;
}

static Node *weight_node(Lower *L, const Stmt *s, const char *ckpt_name, SrcLoc loc)
{
    Node *w = find_weight(L, ckpt_name);
    Node tmp = {0};
    type_shape(L, s->type, &tmp);
    if (w) {
        for (int i = 0; i < tmp.rank; i++)
            if (tmp.rank != w->rank || (tmp.shape[i] != w->shape[i] && tmp.shape[i] != DIM_UNKNOWN &&
                                        w->shape[i] != DIM_UNKNOWN)) {
                error_at(L, loc, "weight '%s' is used again with another shape%s", ckpt_name, "");
                break;
            }
        DType want = dtype_of(s->type->dtype);
        if (want != DT_NONE && want != w->dt)
            error_at(L, loc, "weight '%s' is used again as %s", ckpt_name, ir_dtype_name(want));
        return w;
    }
    w = node(L, OP_WEIGHT, loc, 0, NULL);
    w->weight = ckpt_name;
    w->name = s->name;
    add_weight(L, w);
    w->rank = tmp.rank;
    memcpy(w->shape, tmp.shape, sizeof tmp.shape);
    w->want_dt = dtype_of(s->type->dtype);
    const CompileEnv *env = L->c->env;
    w->dt = w->want_dt != DT_NONE ? w->want_dt : env->default_weight_dt != DT_NONE ? env->default_weight_dt : DT_F32;
    if (!env->ckpt || strchr(ckpt_name, '{'))
        return w;
    const RtTensor *t = rt_ckpt_find(env->ckpt, ckpt_name);
    if (!t) {
        error_at(L, loc, "weight '%s' is not in the checkpoint %s", ckpt_name, env->ckpt_path);
        return w;
    }
    DType dt = from_rt(t->dtype);
    if (dt == DT_NONE) {
        error_at(L, loc, "weight '%s' has dtype %s in the checkpoint; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1", ckpt_name,
                 rt_dtype_name(t->dtype));
        return w;
    }
    if (w->want_dt != DT_NONE && dt != w->want_dt) {
        diag_error(L->c->diags, loc, "weight '%s' is %s in %s, the spec says %s", ckpt_name, ir_dtype_name(dt),
                   t->file, ir_dtype_name(w->want_dt));
        L->failed = true;
        return w;
    }
    w->dt = dt;
    bool same = t->rank == w->rank;
    for (int i = 0; same && i < w->rank; i++)
        same = w->shape[i] == DIM_UNKNOWN || w->shape[i] == t->shape[i];
    if (!same) {
        char have[160];
        size_t k = 0;
        k += (size_t)snprintf(have, sizeof have, "[");
        for (int i = 0; i < t->rank && k < sizeof have - 24; i++)
            k += (size_t)snprintf(have + k, sizeof have - k, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        snprintf(have + k, sizeof have - k, "]");
        /* the spec's side may hold unbound dims: "?" as the IR prints them */
        diag_error(L->c->diags, loc, "weight '%s' is %s in %s, the spec says %s", ckpt_name, have, t->file,
                   ir_shape_str(L->c->arena, w));
        L->failed = true;
    }
    for (int i = 0; i < w->rank; i++)
        if (w->shape[i] == DIM_UNKNOWN && i < t->rank)
            w->shape[i] = t->shape[i];
    return w;
}

static Value eval_weight(Lower *L, const Stmt *s, const Expr *e)
{
    switch (e->kind) {
    case EX_STRING: return (Value){.k = V_TENSOR, .t = weight_node(L, s, expand(L, e), e->loc), .is_weight = true};
    case EX_NAME: {
        Binding *b = lookup(L, e->name);
        if (!b || !b->v.is_weight)
            return error_at(L, e->loc, "'%s' is not a weight%s", e->name, "");
        return b->v;
    }
    case EX_TERNARY: {
        Value c = eval(L, e->a);
        bool t = c.k != V_UNKNOWN && (c.k == V_STR ? c.s[0] != 0 : num(c) != 0);
        return eval_weight(L, s, t ? e->b : e->c);
    }
    default: return error_at(L, e->loc, "a weight is a checkpoint name (a string) or another weight%s%s", "", "");
    }
}

static Value parse_set(Lower *L, const char *text)
{
    char *end;
    long long i = strtoll(text, &end, 10);
    if (*text && !*end)
        return (Value){.k = V_INT, .i = i, .f = (double)i};
    double f = strtod(text, &end);
    if (*text && !*end)
        return (Value){.k = V_FLOAT, .f = f};
    if (!strcmp(text, "true") || !strcmp(text, "false"))
        return (Value){.k = V_BOOL, .i = text[0] == 't'};
    return (Value){.k = V_STR, .s = arena_strdup(L->c->arena, text)};
}

static void lower_block(Lower *L, const Stmt *s);

static void lower_stmt(Lower *L, const Stmt *s)
{
    switch (s->kind) {
    case ST_PARAM: {
        const CompileEnv *env = L->c->env;
        int set = -1;
        for (int i = 0; i < env->nset; i++)
            if (!strcmp(env->set_names[i], s->name)) {
                L->set_used[i] = true;
                set = i;            /* the last --set of a name wins */
            }
        if (set >= 0) {
            define(L, s->name, parse_set(L, env->set_values[set]));
            return;
        }
        L->cfg_key = NULL;
        Value v = eval(L, s->value);
        if (v.k == V_UNKNOWN)
            L->c->unbound = true;
        if (L->cfg_key && (v.k == V_INT || v.k == V_FLOAT || v.k == V_BOOL) &&
            (!L->cfg_values || strlen(L->cfg_values) < 2000)) {   /* for a note if compiling fails (the first few) */
            char val[64];
            if (v.k == V_FLOAT)
                snprintf(val, sizeof val, "%g", v.f);
            else
                snprintf(val, sizeof val, "%lld", (long long)v.i);
            L->cfg_values = arena_printf(L->c->arena, "%s%s%s = %s (%s)", L->cfg_values ? L->cfg_values : "",
                                         L->cfg_values ? ", " : "", s->name, val, L->cfg_key);
        }
        define(L, s->name, v);
        return;
    }
    case ST_INPUT: {
        Node *n = node(L, OP_INPUT, s->loc, 0, NULL);
        n->weight = s->name;
        n->name = s->name;
        n->dt = dtype_of(s->type->dtype);
        if (n->dt == DT_NONE)
            n->dt = DT_F32;
        type_shape(L, s->type, n);
        define(L, s->name, tensor(n));
        return;
    }
    case ST_WEIGHT: {
        Value v = eval_weight(L, s, s->value);
        define(L, s->name, v);
        return;
    }
    case ST_ASSIGN:
    case ST_OUTPUT: {
        Value v = eval(L, s->value);
        if (v.k == V_TENSOR && !v.t->name && !(ir_ops[v.t->op].flags & OPF_LEAF))
            v.t->name = s->name;
        if (s->kind == ST_OUTPUT && v.k == V_TENSOR && v.t->output)
            error_at(L, s->loc, "output '%s' is the same value as output '%s'", s->name, v.t->output);
        else if (s->kind == ST_OUTPUT && v.k == V_TENSOR)
            v.t->output = s->name;
        if (s->kind == ST_OUTPUT && v.k != V_TENSOR && !L->failed)
            error_at(L, s->loc, "output '%s' must be a tensor%s", s->name, "");
        v.is_weight = false;
        assign(L, s->name, v);
        return;
    }
    case ST_REPEAT: {
        Value n = eval(L, s->value);
        int64_t count = 1;
        if (n.k == V_INT) {
            count = n.i;
            if (count < 0 || count > LOWER_MAX_REPEAT) {
                char buf[32];
                snprintf(buf, sizeof buf, "%lld", (long long)count);
                error_at(L, s->value->loc, "repeat count %s is out of range (0 to 100000)%s", buf, "");
                return;
            }
        } else if (n.k != V_UNKNOWN) {
            error_at(L, s->value->loc, "a repeat count must be an integer%s%s", "", "");
            return;
        }
        int saved = L->layer;
        for (int64_t i = 0; i < count && !L->failed; i++) {
            if (++L->iterations > LOWER_MAX_ITERATIONS) {   /* empty nested loops create no nodes, yet take memory */
                error_at(L, s->loc, "repeat blocks run more than %s iterations in all (nested repeat blocks?)%s",
                         "1048576", "");
                L->too_big = true;
                break;
            }
            Scope inner = {.parent = L->scope};
            L->scope = &inner;
            define(L, s->name, n.k == V_INT ? (Value){.k = V_INT, .i = i, .f = (double)i} : unknown());
            L->layer = n.k == V_INT ? (int)i : -1;
            lower_block(L, s->body);
            L->scope = inner.parent;
        }
        L->layer = saved;
        return;
    }
    }
}

static void lower_block(Lower *L, const Stmt *s)
{
    for (; s && !L->too_big; s = s->next) {
        lower_stmt(L, s);
        if (L->g->n > LOWER_MAX_NODES && !L->too_big) {
            error_at(L, s->loc, "the model expands to more than %s graph nodes (nested repeat blocks?)%s", "1048576", "");
            L->too_big = true;   /* stop here: every enclosing repeat checks L->failed */
        }
    }
}

bool pass_lower(Compilation *c)
{
    Scope top = {0};
    Lower L = {.c = c, .scope = &top, .layer = -1};
    L.g = ir_graph_new(c->arena, c->module->name);
    L.set_used = arena_alloc(c->arena, (size_t)(c->env->nset + 1) * sizeof(bool));
    lower_block(&L, c->module->body);
    for (int i = 0; i < c->env->nset; i++)
        if (!L.set_used[i]) {
            diag_error_nopos(c->diags, "--set %s: the spec has no parameter '%s'", c->env->set_names[i],
                             c->env->set_names[i]);
            L.failed = true;
        }
    c->graph = L.g;
    c->config_values = L.cfg_values;
    return !L.failed;
}
