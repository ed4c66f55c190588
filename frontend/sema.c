/* frontend/sema.c — semantic checks on a parsed spec: names, arity, kinds.
 *
 * No config is bound yet, so no value is computed; every expression only gets
 * a kind: a tensor, or a scalar (a number, string or bool, or "some scalar"
 * when it comes from config() and could be any of them).
 *
 *   params and loop variables are scalars; inputs, weights, outputs, op
 *   results and tensor arithmetic are tensors.
 *
 * Scoping is sequential: a name is visible after its definition.  The top
 * level and each repeat body are scopes.  param/input/weight/output names are
 * unique in their scope and never assigned; an assignment to a value defined
 * in an enclosing scope rebinds it (and may not turn a tensor into a scalar
 * or back), a name first assigned in a body is local to it.  The loop
 * variable is an int scalar local to its body and cannot be assigned.
 * param, input and output statements belong at the top level.
 *
 * Requires: a Module from fe_parse_* (or one obeying the same limits).
 * Guarantees: when fe_check returns true, every name resolves, every call
 * names an op of ir/ops.def (or config) with the right operands, and every
 * weight's value is a checkpoint name, another weight or a ?: between them.
 * Changes nothing in the tree.  Scratch memory is a private arena. */
#include <stdint.h>
#include <string.h>

#include "frontend/frontend.h"


typedef struct OpSig {
    const char *name;   /* "" for ops only passes create */
    const char *sig;    /* positional operands: T tensor, n number, s string, b bool */
    const char *kw;     /* "kind:name ..." */
} OpSig;

static const OpSig ops[] = {
#define OP(id, name, sig, kw, flags, infer, cpu_emit) { name, sig, kw },
#include "ir/ops.def"
#undef OP
};

typedef enum {
    K_ERROR,    /* already reported: stay quiet about it */
    K_NUMBER,
    K_STRING,
    K_BOOL,
    K_SCALAR,   /* some scalar (a config value) */
    K_TENSOR,
} Kind;

typedef enum { SYM_PARAM, SYM_INPUT, SYM_WEIGHT, SYM_OUTPUT, SYM_VALUE, SYM_LOOP } SymKind;

typedef struct Sym Sym;
struct Sym {
    const char *name;
    SymKind sk;
    Kind kind;
    SrcLoc loc;         /* the name at its (first) definition */
    int level;          /* depth of the scope it lives in: 0 top level */
    Sym *shadowed;      /* the symbol of the same name it hides, if any */
    Sym *next;          /* the next symbol of its scope */
};

/* One slot per name ever seen; sym is the visible symbol or NULL. */
typedef struct Slot {
    const char *name;
    Sym *sym;
} Slot;

typedef struct Sema {
    Arena *scratch;
    Diags *d;
    Slot *slots;
    size_t cap, used;
    Sym *scope;         /* symbols of the innermost scope */
    int level;
    int depth;          /* recursion depth of the walk */
    bool too_deep;
    bool has_output;
} Sema;

/* ---- the symbol table ------------------------------------------------------ */

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static Slot *slot(Sema *s, const char *name)
{
    if (2 * (s->used + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        Slot *slots = arena_alloc(s->scratch, cap * sizeof *slots);
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->slots[i].name)
                continue;
            size_t j = hash(s->slots[i].name) & (cap - 1);
            while (slots[j].name)
                j = (j + 1) & (cap - 1);
            slots[j] = s->slots[i];
        }
        s->slots = slots;
        s->cap = cap;
    }
    size_t i = hash(name) & (s->cap - 1);
    while (s->slots[i].name && strcmp(s->slots[i].name, name) != 0)
        i = (i + 1) & (s->cap - 1);
    if (!s->slots[i].name) {
        s->slots[i].name = name;
        s->used++;
    }
    return &s->slots[i];
}

static Sym *lookup(Sema *s, const char *name)
{
    return slot(s, name)->sym;
}

static Sym *define(Sema *s, const char *name, SymKind sk, Kind kind, SrcLoc loc)
{
    Slot *sl = slot(s, name);
    Sym *sym = arena_alloc(s->scratch, sizeof *sym);
    sym->name = name;
    sym->sk = sk;
    sym->kind = kind;
    sym->loc = loc;
    sym->level = s->level;
    sym->shadowed = sl->sym;
    sym->next = s->scope;
    s->scope = sym;
    sl->sym = sym;
    return sym;
}

static Sym *enter_scope(Sema *s)
{
    Sym *outer = s->scope;
    s->scope = NULL;
    s->level++;
    return outer;
}

static void leave_scope(Sema *s, Sym *outer)
{
    for (Sym *sym = s->scope; sym; sym = sym->next)
        slot(s, sym->name)->sym = sym->shadowed;
    s->scope = outer;
    s->level--;
}

/* ---- "did you mean" ---------------------------------------------------------- */

/* Optimal string alignment distance (an adjacent swap costs 1), or 3 when it is
 * clearly more than 2.  Three rows of the table suffice. */
static int distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > FE_MAX_IDENT_LEN || m > FE_MAX_IDENT_LEN || (n > m ? n - m : m - n) > 2)
        return 3;
    int rows[3][FE_MAX_IDENT_LEN + 1];
    int *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= m; j++)
        prev[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int best = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        int *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[m];
}

typedef struct Guess {
    const char *want;
    const char *best;
    int dist;
} Guess;

static void consider(Guess *g, const char *name)
{
    if (!name[0] || strcmp(name, g->want) == 0)
        return;
    int dist = distance(g->want, name);
    if (dist > 2 || dist >= (int)strlen(g->want))
        return;
    if (!g->best || dist < g->dist || (dist == g->dist && strcmp(name, g->best) < 0)) {
        g->best = name;
        g->dist = dist;
    }
}

/* Past the error cap nothing is shown: skip the search. */
static bool quiet(const Sema *s)
{
    int limit = s->d->max_errors ? s->d->max_errors : 50;
    return s->d->nerrors >= limit;
}

/* "; did you mean 'dim'?" for a name in scope within distance 2, or "" */
static const char *suggest_name(Sema *s, const char *want)
{
    Guess g = { want, NULL, 0 };
    if (quiet(s))
        return "";
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i].sym)
            consider(&g, s->slots[i].name);
    return g.best ? arena_printf(s->scratch, "; did you mean '%s'?", g.best) : "";
}

static const char *suggest_op(Sema *s, const char *want)
{
    Guess g = { want, NULL, 0 };
    if (quiet(s))
        return "";
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        consider(&g, ops[i].name);
    consider(&g, "config");
    return g.best ? arena_printf(s->scratch, "; did you mean '%s'?", g.best) : "";
}

/* ---- kinds ------------------------------------------------------------------- */

static const char *kind_name(Kind k)
{
    switch (k) {
    case K_NUMBER: return "a number";
    case K_STRING: return "a string";
    case K_BOOL:   return "a bool";
    case K_TENSOR: return "a tensor";
    default:       return "a scalar";
    }
}

static const char *sym_kind_name(SymKind k)
{
    switch (k) {
    case SYM_PARAM:  return "param";
    case SYM_INPUT:  return "input";
    case SYM_WEIGHT: return "weight";
    case SYM_OUTPUT: return "output";
    case SYM_LOOP:   return "loop variable";
    default:         return "value";
    }
}

static bool is_scalar(Kind k) { return k != K_TENSOR; }
static bool is_numeric(Kind k) { return k == K_NUMBER || k == K_SCALAR || k == K_ERROR; }

/* The kind two scalars share, or "some scalar". */
static Kind join(Kind a, Kind b)
{
    if (a == b)
        return a;
    if (a == K_SCALAR)
        return b;
    if (b == K_SCALAR)
        return a;
    return K_SCALAR;
}

/* does an operand of kind k fit the ops.def kind character c */
static bool fits(char c, Kind k)
{
    switch (c) {
    case 'T': return k == K_TENSOR || k == K_ERROR;
    case 'n': return is_numeric(k);
    case 's': return k == K_STRING || k == K_SCALAR || k == K_ERROR;
    case 'b': return k == K_BOOL || k == K_SCALAR || k == K_ERROR;
    default:  return false;
    }
}

static const char *sig_kind_name(char c)
{
    switch (c) {
    case 'T': return "a tensor";
    case 'n': return "a number";
    case 's': return "a string";
    default:  return "a bool";
    }
}

static const char *op_name(int op)
{
    switch (op) {
    case BIN_EQ:  return "==";
    case BIN_NE:  return "!=";
    case BIN_LE:  return "<=";
    case BIN_GE:  return ">=";
    case BIN_AND: return "&&";
    case BIN_OR:  return "||";
    case '+':     return "+";
    case '-':     return "-";
    case '*':     return "*";
    case '/':     return "/";
    case '%':     return "%";
    case '<':     return "<";
    case '>':     return ">";
    case '!':     return "!";
    default:      return "?";
    }
}

static bool is_symbolic_dim(const char *name)
{
    return strcmp(name, "batch") == 0 || strcmp(name, "seq") == 0 || strcmp(name, "ctx") == 0;
}

/* ---- expressions ----------------------------------------------------------- */

static Kind check_expr(Sema *s, const Expr *e);

static bool enter(Sema *s, SrcLoc loc)
{
    if (++s->depth <= SEMA_MAX_DEPTH)
        return true;
    if (!s->too_deep)
        diag_error(s->d, loc, "nested too deeply (more than %d levels)", SEMA_MAX_DEPTH);
    s->too_deep = true;
    return false;
}

static Kind check_name(Sema *s, const Expr *e)
{
    Sym *sym = lookup(s, e->name);
    if (sym)
        return sym->kind;
    if (is_symbolic_dim(e->name))
        diag_error(s->d, e->loc, "'%s' is a symbolic dimension; it can only stand alone in a type",
                   e->name);
    else
        diag_error(s->d, e->loc, "undefined name '%s'%s", e->name, suggest_name(s, e->name));
    return K_ERROR;
}

/* config(KEY) or config(KEY, DEFAULT): KEY a string literal; a scalar */
static Kind check_config(Sema *s, const Expr *e)
{
    int npos = 0;
    Kind def = K_SCALAR;
    for (int i = 0; i < e->nargs; i++) {
        const Arg *a = &e->args[i];
        if (a->kw) {
            diag_error(s->d, a->kwloc, "'config' takes no keyword arguments");
            check_expr(s, a->value);
            continue;
        }
        npos++;
        if (npos == 1) {
            if (a->value->kind != EX_STRING)
                diag_error(s->d, a->value->loc, "the key of 'config' must be a string literal");
        } else {
            Kind k = check_expr(s, a->value);
            if (k == K_TENSOR)
                diag_error(s->d, a->value->loc, "the default of 'config' must be a scalar, got a tensor");
            else if (npos == 2)
                def = k;
        }
    }
    if (npos < 1 || npos > 2) {
        diag_error(s->d, e->loc, "'config' takes 1 or 2 arguments, got %d", npos);
        return K_ERROR;
    }
    return def == K_ERROR ? K_SCALAR : def;
}

/* the kind character of keyword kw in an ops.def kw list, or 0 */
static char kw_kind(const char *list, const char *kw)
{
    size_t n = strlen(kw);
    for (const char *p = list; *p;) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *end = p;
        while (*end && *end != ' ')
            end++;
        if (end - p == (ptrdiff_t)n + 2 && p[1] == ':' && memcmp(p + 2, kw, n) == 0)
            return p[0];
        p = end;
    }
    return 0;
}

static Kind check_call(Sema *s, const Expr *e)
{
    if (strcmp(e->name, "config") == 0)
        return check_config(s, e);

    const OpSig *op = NULL;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (ops[i].name[0] && strcmp(ops[i].name, e->name) == 0)
            op = &ops[i];
    if (!op) {
        diag_error(s->d, e->loc, "unknown op '%s'%s", e->name, suggest_op(s, e->name));
        for (int i = 0; i < e->nargs; i++)
            check_expr(s, e->args[i].value);
        return K_ERROR;
    }

    int want = (int)strlen(op->sig), npos = 0;
    for (int i = 0; i < e->nargs; i++)
        npos += e->args[i].kw == NULL;
    if (npos != want)
        diag_error(s->d, e->loc, "'%s' takes %d argument%s, got %d", e->name, want,
                   want == 1 ? "" : "s", npos);

    int pos = 0;
    for (int i = 0; i < e->nargs; i++) {
        const Arg *a = &e->args[i];
        Kind k = check_expr(s, a->value);
        if (!a->kw) {
            pos++;
            if (pos <= want && !fits(op->sig[pos - 1], k))
                diag_error(s->d, a->value->loc, "argument %d of '%s' must be %s, got %s", pos,
                           e->name, sig_kind_name(op->sig[pos - 1]), kind_name(k));
            continue;
        }
        char c = kw_kind(op->kw, a->kw);
        bool dup = false;
        for (int j = 0; j < i; j++)
            dup |= e->args[j].kw && strcmp(e->args[j].kw, a->kw) == 0;
        if (!c)
            diag_error(s->d, a->kwloc, "'%s' has no keyword argument '%s'", e->name, a->kw);
        else if (dup)
            diag_error(s->d, a->kwloc, "duplicate keyword argument '%s'", a->kw);
        else if (!fits(c, k))
            diag_error(s->d, a->value->loc, "keyword argument '%s' of '%s' must be %s, got %s",
                       a->kw, e->name, sig_kind_name(c), kind_name(k));
    }
    return K_TENSOR;
}

static Kind check_unary(Sema *s, const Expr *e)
{
    Kind k = check_expr(s, e->a);
    if (k == K_ERROR)
        return K_ERROR;
    if (k == K_TENSOR) {
        diag_error(s->d, e->loc, "operator '%s' needs a scalar, got a tensor", op_name(e->op));
        return K_ERROR;
    }
    if (e->op == '!')
        return K_BOOL;
    if (!is_numeric(k)) {
        diag_error(s->d, e->loc, "operator '-' needs a number, got %s", kind_name(k));
        return K_ERROR;
    }
    return K_NUMBER;
}

static Kind check_binary(Sema *s, const Expr *e)
{
    Kind a = check_expr(s, e->a), b = check_expr(s, e->b);
    if (a == K_ERROR || b == K_ERROR)
        return K_ERROR;
    const char *op = op_name(e->op);
    bool arith = e->op == '+' || e->op == '-' || e->op == '*';
    if (arith && a == K_TENSOR && b == K_TENSOR)
        return K_TENSOR;
    if (arith && (a == K_TENSOR) != (b == K_TENSOR)) {
        diag_error(s->d, e->loc, "cannot mix a tensor and a scalar in '%s'", op);
        return K_ERROR;
    }
    if (a == K_TENSOR || b == K_TENSOR) {
        diag_error(s->d, e->loc, "operator '%s' needs scalars, got a tensor", op);
        return K_ERROR;
    }
    if (e->op == BIN_AND || e->op == BIN_OR || e->op == BIN_EQ || e->op == BIN_NE)
        return K_BOOL;
    Kind bad = !is_numeric(a) ? a : !is_numeric(b) ? b : K_ERROR;
    if (bad != K_ERROR) {
        diag_error(s->d, e->loc, "operator '%s' needs numbers, got %s", op, kind_name(bad));
        return K_ERROR;
    }
    bool cmp = e->op == '<' || e->op == '>' || e->op == BIN_LE || e->op == BIN_GE;
    return cmp ? K_BOOL : K_NUMBER;
}

static Kind check_ternary(Sema *s, const Expr *e)
{
    Kind c = check_expr(s, e->a);
    if (c == K_TENSOR)
        diag_error(s->d, e->a->loc, "condition of '?:' must be a scalar, got a tensor");
    Kind a = check_expr(s, e->b), b = check_expr(s, e->c);
    if (a == K_ERROR || b == K_ERROR)
        return K_ERROR;
    if ((a == K_TENSOR) != (b == K_TENSOR)) {
        diag_error(s->d, e->loc, "branches of '?:' differ: %s and %s", kind_name(a), kind_name(b));
        return K_ERROR;
    }
    return a == K_TENSOR ? K_TENSOR : a == b ? a : K_SCALAR;
}

static Kind check_coalesce(Sema *s, const Expr *e)
{
    Kind a = check_expr(s, e->a), b = check_expr(s, e->b);
    if (a == K_ERROR || b == K_ERROR)
        return K_ERROR;
    if (a == K_TENSOR || b == K_TENSOR) {
        diag_error(s->d, e->loc, "operands of '?\?' must be scalars, got a tensor");
        return K_ERROR;
    }
    return join(a, b);
}

static Kind check_expr(Sema *s, const Expr *e)
{
    if (!enter(s, e->loc)) {
        s->depth--;
        return K_ERROR;
    }
    Kind k = K_ERROR;
    switch (e->kind) {
    case EX_INT:
    case EX_FLOAT:    k = K_NUMBER; break;
    case EX_STRING:   k = K_STRING; break;
    case EX_BOOL:     k = K_BOOL; break;
    case EX_NAME:     k = check_name(s, e); break;
    case EX_CALL:     k = check_call(s, e); break;
    case EX_UNARY:    k = check_unary(s, e); break;
    case EX_BINARY:   k = check_binary(s, e); break;
    case EX_TERNARY:  k = check_ternary(s, e); break;
    case EX_COALESCE: k = check_coalesce(s, e); break;
    }
    s->depth--;
    return k;
}

/* ---- types and weights -------------------------------------------------------- */

static void check_type(Sema *s, const TypeExpr *t)
{
    for (int i = 0; i < t->rank; i++) {
        const Expr *dim = t->dims[i];
        if (dim->kind == EX_NAME && is_symbolic_dim(dim->name))
            continue;
        Kind k = check_expr(s, dim);
        if (!is_numeric(k))
            diag_error(s->d, dim->loc, "dimension must be a number, got %s", kind_name(k));
    }
}

static bool is_ident(const char *p, size_t n)
{
    if (n == 0 || !(p[0] == '_' || (p[0] >= 'a' && p[0] <= 'z') || (p[0] >= 'A' && p[0] <= 'Z')))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(p[i] == '_' || (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
              (p[i] >= '0' && p[i] <= '9')))
            return false;
    return true;
}

/* The location of byte off of string literal e's value: inside the literal
 * when the source spells the bytes before it as they are (no escapes), else
 * the literal's opening quote. */
static SrcLoc string_loc(const Expr *e, size_t off)
{
    const Source *src = e->loc.src;
    if (!src)
        return e->loc;
    const char *p = src->text, *end = p + src->len;
    for (int line = 1; line < e->loc.line && p < end; p++)
        if (*p == '\n')
            line++;
    const char *raw = p + e->loc.col;           /* just past the opening quote */
    if (raw + off > end || memcmp(raw, e->sval, off) != 0)
        return e->loc;
    SrcLoc loc = e->loc;
    loc.col += 1 + (int)off;
    return loc;
}

/* Each {name} in a checkpoint name must be an int scalar in scope: a loop
 * variable or a param. */
static void check_placeholders(Sema *s, const Expr *e)
{
    for (const char *p = e->sval; (p = strchr(p, '{')) != NULL;) {
        SrcLoc at = string_loc(e, (size_t)(p - e->sval));
        const char *end = strchr(p, '}');
        if (!end) {
            diag_error(s->d, at, "unclosed '{' in weight name");
            return;
        }
        size_t n = (size_t)(end - p - 1);
        const char *name = arena_strndup(s->scratch, p + 1, n);
        if (!is_ident(name, n)) {
            diag_error(s->d, at, "invalid placeholder '{%s}' in weight name", name);
        } else {
            Sym *sym = lookup(s, name);
            bool ok = sym && (sym->sk == SYM_LOOP || sym->sk == SYM_PARAM) && is_numeric(sym->kind);
            if (!ok)
                diag_error(s->d, at,
                           "placeholder '{%s}' must name a loop variable or int param in scope", name);
        }
        p = end + 1;
    }
}

/* weight value: a string, another weight, or a ?: choosing between those */
static void check_weight_value(Sema *s, const Stmt *st, const Expr *v)
{
    if (!enter(s, v->loc)) {
        s->depth--;
        return;
    }
    switch (v->kind) {
    case EX_STRING:
        check_placeholders(s, v);
        break;
    case EX_NAME: {
        Sym *sym = lookup(s, v->name);
        if (!sym)
            check_name(s, v);
        else if (sym->sk != SYM_WEIGHT)
            diag_error(s->d, v->loc, "'%s' is not a weight (it is %s %s)", v->name,
                       sym->sk == SYM_INPUT || sym->sk == SYM_OUTPUT ? "an" : "a",
                       sym_kind_name(sym->sk));
        break;
    }
    case EX_TERNARY: {
        Kind c = check_expr(s, v->a);
        if (c == K_TENSOR)
            diag_error(s->d, v->a->loc, "condition of '?:' must be a scalar, got a tensor");
        check_weight_value(s, st, v->b);
        check_weight_value(s, st, v->c);
        break;
    }
    default:
        diag_error(s->d, v->loc,
                   "the value of weight '%s' must be a checkpoint name (a string), another weight, "
                   "or '?:' choosing between them", st->name);
        break;
    }
    s->depth--;
}

/* ---- statements ----------------------------------------------------------------- */

static void declare(Sema *s, const Stmt *st, SymKind sk, Kind kind)
{
    Sym *old = lookup(s, st->name);
    if (old && old->level == s->level) {
        diag_error(s->d, st->nameloc, "duplicate definition of '%s'", st->name);
        diag_note(s->d, old->loc, "previous definition is here");
        return;
    }
    define(s, st->name, sk, kind, st->nameloc);
}

static void assign(Sema *s, const Stmt *st, Kind kind)
{
    Sym *old = lookup(s, st->name);
    if (!old) {
        define(s, st->name, SYM_VALUE, kind, st->nameloc);
        return;
    }
    if (old->sk != SYM_VALUE) {
        diag_error(s->d, st->nameloc, "cannot assign to %s '%s'", sym_kind_name(old->sk), st->name);
        diag_note(s->d, old->loc, "'%s' is defined here", st->name);
        return;
    }
    /* a repeat body runs many times: what it rebinds must keep its kind */
    if (old->level < s->level && kind != K_ERROR && old->kind != K_ERROR &&
        (kind == K_TENSOR) != (old->kind == K_TENSOR)) {
        diag_error(s->d, st->nameloc, "cannot rebind '%s' from %s to %s inside a repeat body",
                   st->name, kind_name(old->kind), kind_name(kind));
        diag_note(s->d, old->loc, "'%s' is defined here", st->name);
        return;
    }
    old->kind = kind;
}

static void top_level_only(Sema *s, const Stmt *st, const char *what)
{
    if (s->level > 0)
        diag_error(s->d, st->loc, "'%s' is only allowed at the top level of a model", what);
}

static void check_body(Sema *s, const Stmt *body)
{
    for (const Stmt *st = body; st; st = st->next) {
        Kind k;
        switch (st->kind) {
        case ST_PARAM:
            top_level_only(s, st, "param");
            k = check_expr(s, st->value);
            if (k == K_TENSOR) {
                diag_error(s->d, st->value->loc, "param '%s' must be a scalar, got a tensor", st->name);
                k = K_ERROR;
            }
            declare(s, st, SYM_PARAM, k);
            break;
        case ST_INPUT:
            top_level_only(s, st, "input");
            check_type(s, st->type);
            declare(s, st, SYM_INPUT, K_TENSOR);
            break;
        case ST_WEIGHT:
            check_type(s, st->type);
            check_weight_value(s, st, st->value);
            declare(s, st, SYM_WEIGHT, K_TENSOR);
            break;
        case ST_ASSIGN:
            assign(s, st, check_expr(s, st->value));
            break;
        case ST_OUTPUT:
            top_level_only(s, st, "output");
            k = check_expr(s, st->value);
            if (is_scalar(k) && k != K_ERROR)
                diag_error(s->d, st->value->loc, "output '%s' must be a tensor, got %s", st->name,
                           kind_name(k));
            declare(s, st, SYM_OUTPUT, K_TENSOR);
            s->has_output = true;
            break;
        case ST_REPEAT: {
            k = check_expr(s, st->value);
            if (!is_numeric(k))
                diag_error(s->d, st->value->loc, "repeat bound must be a number, got %s", kind_name(k));
            if (!enter(s, st->loc)) {
                s->depth--;
                break;
            }
            Sym *outer = enter_scope(s);
            define(s, st->name, SYM_LOOP, K_NUMBER, st->nameloc);
            check_body(s, st->body);
            leave_scope(s, outer);
            s->depth--;
            break;
        }
        }
    }
}

bool fe_check(const Module *m, Diags *d)
{
    if (!m)
        return false;
    int before = d->nerrors;
    Sema s = { .scratch = arena_new(), .d = d };
    check_body(&s, m->body);
    if (!s.has_output)
        diag_error(d, m->loc, "model '%s' has no output", m->name);
    arena_free(s.scratch);
    return d->nerrors == before;
}
