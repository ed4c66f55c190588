/* tests/frontend/test_frontend.c — the lexer, parser and semantic checks.
 *
 * Three kinds of test:
 *   - tree tests parse a snippet and look at the AST: kinds, precedence,
 *     values, locations;
 *   - golden tests: each tests/frontend/errors/NAME.mdl is parsed and checked
 *     and everything diag_print writes must equal NAME.err beside it, byte
 *     for byte (header, quoted line, caret).  MODELC_UPDATE_GOLDEN=1 rewrites
 *     the .err files instead of comparing (then read the diff);
 *   - limit tests feed hostile input (deep nesting, huge tokens, NUL bytes,
 *     oversized files) and expect one clean diagnostic.
 * Run from the repository root (tests/run_tests.py does). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"

#define GOLDEN_DIR "tests/frontend/errors"

typedef struct Fx {
    Arena *a;
    Diags d;
} Fx;

static int setup(void **state)
{
    Fx *f = calloc(1, sizeof *f);
    f->a = arena_new();
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

static Module *parse(Fx *f, const char *text)
{
    return fe_parse_string("t.mdl", text, strlen(text), f->a, &f->d);
}

/* everything diag_print writes, copied into the arena */
static const char *rendered(Fx *f)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    assert_non_null(m);
    diag_print(&f->d, m);
    fclose(m);
    const char *s = arena_strndup(f->a, buf, len);
    free(buf);
    return s;
}

/* parse, check when it parsed, and return the diagnostics */
static const char *diagnose(Fx *f, const char *text)
{
    Module *m = parse(f, text);
    if (m)
        fe_check(m, &f->d);
    return rendered(f);
}

/* parse text that must be clean; return the single statement's value */
static Module *parse_ok(Fx *f, const char *text)
{
    Module *m = parse(f, text);
    if (!m)
        fprintf(stderr, "%s", rendered(f));
    assert_non_null(m);
    return m;
}

/* the value of the n-th statement (0-based) */
static Stmt *nth(Module *m, int n)
{
    Stmt *s = m->body;
    while (n-- > 0 && s)
        s = s->next;
    assert_non_null(s);
    return s;
}

static void assert_loc(SrcLoc loc, int line, int col)
{
    assert_non_null(loc.src);
    assert_int_equal(loc.line, line);
    assert_int_equal(loc.col, col);
}

static void assert_name(const Expr *e, const char *name)
{
    assert_int_equal(e->kind, EX_NAME);
    assert_string_equal(e->name, name);
}

static void assert_binary(const Expr *e, int op)
{
    assert_int_equal(e->kind, EX_BINARY);
    assert_int_equal(e->op, op);
}

/* ---- trees -------------------------------------------------------------------- */

static void test_statements(void **state)
{
    Fx *f = *state;
    Module *m = parse_ok(f,
        "# a comment\n"
        "model tiny {\n"
        "  param n = config(\"n\")\n"
        "  input  x : f32[batch, seq]\n"
        "  weight w : [n, n] = \"w.weight\"\n"
        "  y = linear(x, w)\n"
        "  repeat i < n { y = y + y }\n"
        "  output out = y\n"
        "}\n");
    assert_string_equal(m->name, "tiny");
    assert_loc(m->loc, 2, 1);
    assert_ptr_equal(m->src, m->loc.src);
    assert_string_equal(m->src->path, "t.mdl");

    static const StmtKind kinds[] = { ST_PARAM, ST_INPUT, ST_WEIGHT, ST_ASSIGN, ST_REPEAT, ST_OUTPUT };
    static const char *names[] = { "n", "x", "w", "y", "i", "out" };
    static const int lines[] = { 3, 4, 5, 6, 7, 8 };
    Stmt *s = m->body;
    for (int i = 0; i < 6; i++, s = s->next) {
        assert_non_null(s);
        assert_int_equal(s->kind, kinds[i]);
        assert_string_equal(s->name, names[i]);
        assert_loc(s->loc, lines[i], 3);
    }
    assert_null(s);

    assert_loc(nth(m, 0)->nameloc, 3, 9);
    assert_loc(nth(m, 3)->nameloc, 6, 3);           /* an assignment: loc is the name */
    assert_loc(nth(m, 4)->nameloc, 7, 10);

    Stmt *rep = nth(m, 4);
    assert_name(rep->value, "n");
    assert_non_null(rep->body);
    assert_int_equal(rep->body->kind, ST_ASSIGN);
    assert_null(rep->body->next);
    assert_binary(rep->body->value, '+');
    assert_loc(rep->body->value->loc, 7, 24);

    assert_true(fe_check(m, &f->d));
    assert_false(diag_has_errors(&f->d));
}

static void test_types(void **state)
{
    Fx *f = *state;
    Module *m = parse_ok(f,
        "model m {\n"
        "  input a : i32[seq]\n"
        "  input b : bf16[batch, ctx, 4 * 2]\n"
        "  weight c : [8] = \"c\"\n"
        "  weight d : f16 = \"d\"\n"
        "  input e : f32[1, 2, 3, 4, 5, 6, 7, 8]\n"
        "  output o = a\n"
        "}\n");
    TypeExpr *t = nth(m, 0)->type;
    assert_int_equal(t->dtype, TY_I32);
    assert_true(t->has_shape);
    assert_int_equal(t->rank, 1);
    assert_name(t->dims[0], "seq");
    assert_loc(t->loc, 2, 13);

    t = nth(m, 1)->type;
    assert_int_equal(t->dtype, TY_BF16);
    assert_int_equal(t->rank, 3);
    assert_name(t->dims[0], "batch");
    assert_name(t->dims[1], "ctx");
    assert_binary(t->dims[2], '*');

    t = nth(m, 2)->type;
    assert_int_equal(t->dtype, TY_ANY);
    assert_true(t->has_shape);
    assert_int_equal(t->rank, 1);
    assert_int_equal(t->dims[0]->kind, EX_INT);
    assert_int_equal(t->dims[0]->ival, 8);
    assert_loc(t->loc, 4, 14);

    t = nth(m, 3)->type;
    assert_int_equal(t->dtype, TY_F16);
    assert_false(t->has_shape);
    assert_int_equal(t->rank, 0);

    assert_int_equal(nth(m, 4)->type->rank, FE_MAX_RANK);
}

/* one expression, as the value of "x = ..." */
static Expr *expr(Fx *f, const char *src)
{
    char *text = arena_printf(f->a, "model m { x = %s }", src);
    Module *m = parse_ok(f, text);
    assert_int_equal(m->body->kind, ST_ASSIGN);
    assert_null(m->body->next);
    return m->body->value;
}

static void test_precedence(void **state)
{
    Fx *f = *state;
    Expr *e = expr(f, "a + b * c");                         /* a + (b * c) */
    assert_binary(e, '+');
    assert_name(e->a, "a");
    assert_binary(e->b, '*');

    e = expr(f, "a - b - c");                               /* (a - b) - c */
    assert_binary(e, '-');
    assert_binary(e->a, '-');
    assert_name(e->b, "c");

    e = expr(f, "(a + b) * c");
    assert_binary(e, '*');
    assert_binary(e->a, '+');

    e = expr(f, "-a * b");                                  /* (-a) * b */
    assert_binary(e, '*');
    assert_int_equal(e->a->kind, EX_UNARY);
    assert_int_equal(e->a->op, '-');

    e = expr(f, "!a && b || c == d");                       /* ((!a) && b) || (c == d) */
    assert_binary(e, BIN_OR);
    assert_binary(e->a, BIN_AND);
    assert_int_equal(e->a->a->kind, EX_UNARY);
    assert_int_equal(e->a->a->op, '!');
    assert_binary(e->b, BIN_EQ);

    e = expr(f, "a + 1 < b % 2");                           /* (a + 1) < (b % 2) */
    assert_binary(e, '<');
    assert_binary(e->a, '+');
    assert_binary(e->b, '%');

    e = expr(f, "a <= b != c >= d > e");                    /* one level, left to right */
    assert_binary(e, '>');
    assert_binary(e->a, BIN_GE);
    assert_binary(e->a->a, BIN_NE);
    assert_binary(e->a->a->a, BIN_LE);

    e = expr(f, "a ?? b ?? c");                             /* (a ?? b) ?? c */
    assert_int_equal(e->kind, EX_COALESCE);
    assert_int_equal(e->a->kind, EX_COALESCE);
    assert_name(e->b, "c");

    e = expr(f, "a || b ?? c");                             /* ?? binds looser than || */
    assert_int_equal(e->kind, EX_COALESCE);
    assert_binary(e->a, BIN_OR);

    e = expr(f, "a ? b : c ? d : e");                       /* a ? b : (c ? d : e) */
    assert_int_equal(e->kind, EX_TERNARY);
    assert_name(e->a, "a");
    assert_name(e->b, "b");
    assert_int_equal(e->c->kind, EX_TERNARY);

    e = expr(f, "a ?? b ? c + d : e");                      /* (a ?? b) ? (c + d) : e */
    assert_int_equal(e->kind, EX_TERNARY);
    assert_int_equal(e->a->kind, EX_COALESCE);
    assert_binary(e->b, '+');

    e = expr(f, "- - a");
    assert_int_equal(e->kind, EX_UNARY);
    assert_int_equal(e->a->kind, EX_UNARY);
    assert_name(e->a->a, "a");
}

static void test_locations(void **state)
{
    Fx *f = *state;
    Module *m = parse_ok(f,
        "model m {\n"
        "\tx = a +\n"
        "      linear(b, c)\n"
        "  y = -(p ? q : r ?? s)\n"
        "}\n");
    Expr *e = nth(m, 0)->value;                   /* a tab is one column */
    assert_loc(nth(m, 0)->loc, 2, 2);
    assert_loc(e->loc, 2, 8);                     /* the operator */
    assert_loc(e->a->loc, 2, 6);
    assert_loc(e->b->loc, 3, 7);                  /* a call: the callee */
    assert_loc(e->b->args[0].value->loc, 3, 14);
    assert_loc(e->b->args[1].value->loc, 3, 17);

    e = nth(m, 1)->value;
    assert_loc(e->loc, 4, 7);                     /* unary: the operator */
    assert_loc(e->a->loc, 4, 11);                 /* '?', not the parenthesis */
    assert_loc(e->a->c->loc, 4, 19);              /* '??' */
}

static void test_literals(void **state)
{
    Fx *f = *state;
    Expr *e = expr(f, "f(42, 9223372036854775807, 1e-5, 10000.0, .5, 2., 3E+2, true, false)");
    assert_int_equal(e->kind, EX_CALL);
    assert_string_equal(e->name, "f");
    assert_int_equal(e->nargs, 9);
    assert_int_equal(e->args[0].value->kind, EX_INT);
    assert_int_equal(e->args[0].value->ival, 42);
    assert_true(e->args[1].value->ival == INT64_MAX);
    static const double fl[] = { 1e-5, 10000.0, .5, 2., 3E+2 };
    for (int i = 0; i < 5; i++) {
        assert_int_equal(e->args[2 + i].value->kind, EX_FLOAT);
        assert_true(e->args[2 + i].value->fval == fl[i]);
    }
    assert_int_equal(e->args[7].value->kind, EX_BOOL);
    assert_int_equal(e->args[7].value->ival, 1);
    assert_int_equal(e->args[8].value->kind, EX_BOOL);
    assert_int_equal(e->args[8].value->ival, 0);

    e = expr(f, "\"a\\\"b\\\\c\\nd {i} # not a comment\"");
    assert_int_equal(e->kind, EX_STRING);
    assert_string_equal(e->sval, "a\"b\\c\nd {i} # not a comment");

    e = expr(f, "\"\"");
    assert_string_equal(e->sval, "");
}

static void test_call_args(void **state)
{
    Fx *f = *state;
    Expr *e = expr(f, "rope(q, theta: t, type: \"x\")");
    assert_int_equal(e->kind, EX_CALL);
    assert_int_equal(e->nargs, 3);
    assert_null(e->args[0].kw);
    assert_name(e->args[0].value, "q");
    assert_string_equal(e->args[1].kw, "theta");
    assert_loc(e->args[1].kwloc, 1, 23);
    assert_name(e->args[1].value, "t");
    assert_string_equal(e->args[2].kw, "type");
    assert_int_equal(e->args[2].value->kind, EX_STRING);

    e = expr(f, "merge_heads()");
    assert_int_equal(e->kind, EX_CALL);
    assert_int_equal(e->nargs, 0);

    e = expr(f, "f(g(h(1)))");
    assert_string_equal(e->args[0].value->args[0].value->name, "h");
}

static void test_layout_free(void **state)
{
    Fx *f = *state;
    /* newlines mean nothing; ';' may end any statement */
    Module *m = parse_ok(f, "model m{input t:f32[seq];x=t;;output o=x;repeat i<2{x=x+x;};}");
    assert_int_equal(nth(m, 0)->kind, ST_INPUT);
    assert_int_equal(nth(m, 1)->kind, ST_ASSIGN);
    assert_int_equal(nth(m, 2)->kind, ST_OUTPUT);
    assert_int_equal(nth(m, 3)->kind, ST_REPEAT);
    assert_null(nth(m, 3)->next);
    assert_true(fe_check(m, &f->d));

    m = parse_ok(f, "model m {\n  param\n  d\n  =\n  2\n  input t : f32[\n    seq,\n    d\n  ]\n output o = t }");
    assert_int_equal(nth(m, 1)->type->rank, 2);
    assert_loc(nth(m, 1)->type->dims[1]->loc, 8, 5);
}

static void test_nested_repeat(void **state)
{
    Fx *f = *state;
    Module *m = parse_ok(f,
        "model m {\n"
        "  input t : f32[seq]\n"
        "  x = t\n"
        "  repeat i < 2 {\n"
        "    repeat j < i + 1 {\n"
        "      weight w : [4] = \"l.{i}.{j}\"\n"
        "      x = x * w\n"
        "    }\n"
        "  }\n"
        "  output o = x\n"
        "}\n");
    Stmt *outer = nth(m, 2);
    assert_int_equal(outer->kind, ST_REPEAT);
    Stmt *inner = outer->body;
    assert_int_equal(inner->kind, ST_REPEAT);
    assert_string_equal(inner->name, "j");
    assert_binary(inner->value, '+');
    assert_int_equal(inner->body->kind, ST_WEIGHT);
    assert_string_equal(inner->body->value->sval, "l.{i}.{j}");
    assert_true(fe_check(m, &f->d));
}

/* the value assigned in a body rebinds the outer name; names first defined
 * in a body are its own; an inner weight may shadow an outer name */
static void test_scoping_ok(void **state)
{
    Fx *f = *state;
    assert_string_equal(diagnose(f,
        "model m {\n"
        "  param n = config(\"n\")\n"
        "  input t : f32[seq]\n"
        "  x = t\n"
        "  repeat i < n {\n"
        "    h = x\n"
        "    weight t : [1] = \"t.{i}\"\n"
        "    x = h + t\n"
        "  }\n"
        "  repeat i < n { h = 1 }\n"
        "  h = x\n"
        "  h = 2\n"
        "  output o = x\n"
        "}\n"), "");
}

static void test_models(void **state)
{
    Fx *f = *state;
    static const char *paths[] = { "models/llama.mdl", "models/mlp.mdl" };
    for (int i = 0; i < 2; i++) {
        Module *m = fe_parse_file(paths[i], f->a, &f->d);
        if (!m || !fe_check(m, &f->d))
            fprintf(stderr, "%s", rendered(f));
        assert_non_null(m);
        assert_false(diag_has_errors(&f->d));
        assert_string_equal(m->src->path, paths[i]);
        bool repeat = false, output = false;
        for (Stmt *s = m->body; s; s = s->next) {
            repeat |= s->kind == ST_REPEAT;
            output |= s->kind == ST_OUTPUT && strcmp(s->name, "logits") == 0;
        }
        assert_true(repeat);
        assert_true(output);
    }
}

/* ---- diagnostics written out here ------------------------------------------------ */

static void test_diag_format(void **state)
{
    Fx *f = *state;
    assert_string_equal(diagnose(f,
        "model m {\n"
        "  input t : f32[seq]\n"
        "  output o = linear(t, dmi)\n"
        "}\n"),
        "t.mdl:3:24: error: undefined name 'dmi'\n"
        "    3 |   output o = linear(t, dmi)\n"
        "      |                        ^\n");
}

static void test_did_you_mean(void **state)
{
    Fx *f = *state;
    assert_string_equal(diagnose(f,
        "model m {\n"
        "  param dim = 4\n"
        "  input t : f32[seq, dmi]\n"
        "  output o = t\n"
        "}\n"),
        "t.mdl:3:22: error: undefined name 'dmi'; did you mean 'dim'?\n"
        "    3 |   input t : f32[seq, dmi]\n"
        "      |                      ^\n");
}

static void test_tab_caret(void **state)
{
    Fx *f = *state;
    assert_string_equal(diagnose(f, "model m {\n\toutput o =\tq\n}"),
        "t.mdl:2:13: error: undefined name 'q'\n"
        "    2 | \toutput o =\tq\n"
        "      | \t          \t^\n");
}

static void test_parse_error_skips_check(void **state)
{
    Fx *f = *state;
    /* a syntax error: no module, so no semantic errors on top */
    assert_null(parse(f, "model m { x = undefined_name + }"));
    assert_string_equal(rendered(f),
        "t.mdl:1:32: error: unexpected '}', expected expression\n"
        "    1 | model m { x = undefined_name + }\n"
        "      |                                ^\n");
    assert_false(fe_check(NULL, &f->d));
}

static void test_error_cap(void **state)
{
    Fx *f = *state;
    f->d.max_errors = 2;
    assert_null(parse(f, "model m {\n  x = @\n  y = @\n  z = @\n  w = @\n}\n"));
    assert_int_equal(f->d.nerrors, 4);
    assert_string_equal(rendered(f),
        "t.mdl:2:7: error: unexpected character '@'\n"
        "    2 |   x = @\n"
        "      |       ^\n"
        "t.mdl:3:7: error: unexpected character '@'\n"
        "    3 |   y = @\n"
        "      |       ^\n"
        "modelc: note: 2 more errors not shown\n");
}

static void test_missing_file(void **state)
{
    Fx *f = *state;
    assert_null(fe_parse_file("tests/frontend/no-such-file.mdl", f->a, &f->d));
    assert_string_equal(rendered(f),
        "modelc: error: cannot open 'tests/frontend/no-such-file.mdl': No such file or directory\n");
}

/* ---- hostile input ---------------------------------------------------------------- */

/* "model m { x = " + n copies of piece + tail + " }" */
static const char *repeated(Fx *f, const char *piece, int n, const char *tail)
{
    size_t k = strlen(piece);
    char *s = arena_alloc(f->a, 32 + k * (size_t)n + strlen(tail));
    char *p = s + sprintf(s, "model m { x = ");
    for (int i = 0; i < n; i++, p += k)
        memcpy(p, piece, k);
    sprintf(p, "%s }", tail);
    return s;
}

/* only the header line of the first diagnostic (the excerpt of a long line is long) */
static const char *first_header(Fx *f)
{
    const char *all = rendered(f);
    const char *nl = strchr(all, '\n');
    return arena_strndup(f->a, all, nl ? (size_t)(nl - all) : strlen(all));
}

static void test_deep_parens(void **state)
{
    Fx *f = *state;
    assert_null(parse(f, repeated(f, "(", 10000, "1")));
    assert_int_equal(f->d.nerrors, 1);
    assert_string_equal(first_header(f), "t.mdl:1:79: error: parentheses nested too deeply (the limit is 64)");
}

static void test_deep_calls(void **state)
{
    Fx *f = *state;
    assert_null(parse(f, repeated(f, "silu(", 10000, "t")));
    assert_int_equal(f->d.nerrors, 1);
    assert_string_equal(first_header(f), "t.mdl:1:339: error: parentheses nested too deeply (the limit is 64)");
}

static void test_nesting_at_limit(void **state)
{
    Fx *f = *state;
    char *src = arena_alloc(f->a, 6 * FE_MAX_NESTING + 128);
    char *p = src + sprintf(src, "model m { input t : f32[seq]\n x = ");
    for (int i = 0; i < FE_MAX_NESTING; i++)
        p += sprintf(p, "silu(");
    p += sprintf(p, "t");
    for (int i = 0; i < FE_MAX_NESTING; i++)
        *p++ = ')';
    strcpy(p, "\n output o = x }");
    Module *m = parse_ok(f, src);
    assert_true(fe_check(m, &f->d));
}

static void test_deep_unary(void **state)
{
    Fx *f = *state;
    assert_null(parse(f, repeated(f, "-", 10000, "1")));
    assert_int_equal(f->d.nerrors, 1);
    assert_string_equal(first_header(f), "t.mdl:1:10007: error: expression is nested too deeply for the parser");

    Fx g = { arena_new(), { 0 } };
    diag_init(&g.d, g.a);
    assert_null(parse(&g, repeated(&g, "!", 2000, "1")));
    assert_int_equal(g.d.nerrors, 1);
    assert_string_equal(first_header(&g), "t.mdl:1:1015: error: expression is nested too deeply (more than 1000 levels)");
    arena_free(g.a);
}

static void test_long_chain(void **state)
{
    Fx *f = *state;
    /* a left-deep tree never grows the parser's stack, but must not grow the
     * tree past what later recursive passes can walk */
    assert_null(parse(f, repeated(f, "1+", 1000000, "1")));
    assert_int_equal(f->d.nerrors, 1);
    assert_string_equal(first_header(f), "t.mdl:1:2014: error: expression is nested too deeply (more than 1000 levels)");

    Fx g = { arena_new(), { 0 } };
    diag_init(&g.d, g.a);
    Module *m = parse(&g, repeated(&g, "1+", 999, "1"));
    assert_non_null(m);
    arena_free(g.a);
}

static void test_deep_repeat(void **state)
{
    Fx *f = *state;
    char *src = arena_alloc(f->a, 20 * 10000 + 64);
    char *p = src + sprintf(src, "model m {");
    for (int i = 0; i < 10000; i++)
        p += sprintf(p, "repeat i<2{");
    strcpy(p, "}");
    assert_null(parse(f, src));
    assert_int_equal(f->d.nerrors, 1);
    assert_string_equal(first_header(f), "t.mdl:1:724: error: repeat blocks nested too deeply (the limit is 64)");
}

static void test_huge_identifier(void **state)
{
    Fx *f = *state;
    size_t n = 1 << 20;
    char *src = arena_alloc(f->a, n + 64);
    strcpy(src, "model m { ");
    memset(src + 10, 'a', n);
    strcpy(src + 10 + n, " = 1 }");
    assert_null(parse(f, src));
    assert_int_equal(f->d.nerrors, 1);
    assert_string_equal(first_header(f), "t.mdl:1:11: error: identifier is longer than 256 bytes");

    /* exactly at the limit is fine */
    Fx g = { arena_new(), { 0 } };
    diag_init(&g.d, g.a);
    memset(src + 10, 'b', FE_MAX_IDENT_LEN);
    strcpy(src + 10 + FE_MAX_IDENT_LEN, " = 1 }");
    Module *m = parse(&g, src);
    assert_non_null(m);
    assert_int_equal(strlen(m->body->name), FE_MAX_IDENT_LEN);
    arena_free(g.a);
}

static void test_long_string(void **state)
{
    Fx *f = *state;
    size_t n = FE_MAX_STRING_LEN + 1;
    char *src = arena_alloc(f->a, n + 64);
    strcpy(src, "model m { x = \"");
    memset(src + 15, 's', n);
    strcpy(src + 15 + n, "\" }");
    assert_null(parse(f, src));
    assert_int_equal(f->d.nerrors, 1);
    assert_string_equal(first_header(f), "t.mdl:1:15: error: string literal is longer than 4096 bytes");

    Fx g = { arena_new(), { 0 } };
    diag_init(&g.d, g.a);
    strcpy(src + 15 + n - 1, "\" }");                  /* 4096 bytes: fine */
    Module *m = parse(&g, src);
    assert_non_null(m);
    assert_int_equal(strlen(m->body->value->sval), FE_MAX_STRING_LEN);
    arena_free(g.a);
}

static void test_nul_byte(void **state)
{
    Fx *f = *state;
    static const char src[] = "model m {\n  x = 1\0 }\n";
    assert_null(fe_parse_string("t.mdl", src, sizeof src - 1, f->a, &f->d));
    assert_string_equal(rendered(f),
        "t.mdl:2:8: error: file contains a NUL byte\n"
        "    2 |   x = 1\n"
        "      |        ^\n");
}

static void test_too_large(void **state)
{
    Fx *f = *state;
    size_t n = (size_t)FE_MAX_SOURCE_BYTES + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, '#', n);
    Module *m = fe_parse_string("big.mdl", big, n, f->a, &f->d);
    free(big);
    assert_null(m);
    assert_string_equal(rendered(f),
        "modelc: error: 'big.mdl' is too large: 16777217 bytes (the limit is 16777216)\n");
}

static void test_file_too_large(void **state)
{
    Fx *f = *state;
    char path[] = "/tmp/modelc-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "wb");
    assert_non_null(fp);
    static char line[4096];
    memset(line, '#', sizeof line);
    for (size_t n = 0; n <= FE_MAX_SOURCE_BYTES; n += sizeof line)
        fwrite(line, 1, sizeof line, fp);
    fclose(fp);
    Module *m = fe_parse_file(path, f->a, &f->d);
    remove(path);
    assert_null(m);
    assert_string_equal(rendered(f),
        arena_printf(f->a, "modelc: error: '%s' is too large: more than 16777216 bytes\n", path));
}

static void test_unterminated_string_at_eof(void **state)
{
    Fx *f = *state;
    assert_string_equal(diagnose(f, "model m { weight w : [1] = \"abc"),
        "t.mdl:1:28: error: unterminated string literal\n"
        "    1 | model m { weight w : [1] = \"abc\n"
        "      |                            ^\n"
        "t.mdl:1:32: error: unexpected end of file, expected statement or '}'\n"
        "    1 | model m { weight w : [1] = \"abc\n"
        "      |                                ^\n");
}

/* Strings are byte strings: bytes >= 0x80 (valid UTF-8 or not) are kept as
 * they are; outside strings and comments they are an error. */
static void test_non_ascii(void **state)
{
    Fx *f = *state;
    Module *m = parse_ok(f, "# caf\xc3\xa9 \xff\nmodel m { weight w : [1] = \"caf\xc3\xa9 \xff\xfe\" output o = w }");
    assert_string_equal(nth(m, 0)->value->sval, "caf\xc3\xa9 \xff\xfe");
    assert_true(fe_check(m, &f->d));

    assert_string_equal(diagnose(f, "model m { x\xc3\xa9 = 1 }"),
        "t.mdl:1:12: error: unexpected byte 0xc3 (non-ASCII text is only allowed in strings and comments)\n"
        "    1 | model m { x\xc3\xa9 = 1 }\n"
        "      |            ^\n");
}

static void test_end_of_file_position(void **state)
{
    Fx *f = *state;
    /* the caret goes just past the last character, not onto a line that is not there */
    assert_string_equal(diagnose(f, "model m {\n  input t : f32[seq]\n\n"),
        "t.mdl:2:21: error: unexpected end of file, expected statement or '}'\n"
        "    2 |   input t : f32[seq]\n"
        "      |                     ^\n");
}

/* ---- golden files ------------------------------------------------------------------ */

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
        got = fread(buf + n, 1, cap - n, fp);
        n += got;
    } while (got > 0);
    fclose(fp);
    buf[n] = 0;
    *len = n;
    return buf;
}

/* NAME.mdl's diagnostics must equal NAME.err */
static void golden(const char *name)
{
    Arena *a = arena_new();
    Diags d;
    diag_init(&d, a);
    char *mdl = arena_printf(a, "%s/%s.mdl", GOLDEN_DIR, name);
    char *err = arena_printf(a, "%s/%s.err", GOLDEN_DIR, name);
    Module *m = fe_parse_file(mdl, a, &d);
    if (m)
        fe_check(m, &d);

    char *got = NULL;
    size_t got_len = 0;
    FILE *ms = open_memstream(&got, &got_len);
    diag_print(&d, ms);
    fclose(ms);
    const char *got_a = arena_strndup(a, got, got_len);
    free(got);

    if (getenv("MODELC_UPDATE_GOLDEN")) {
        FILE *out = fopen(err, "wb");
        assert_non_null(out);
        fwrite(got_a, 1, got_len, out);
        fclose(out);
    }
    size_t want_len = 0;
    char *want = slurp(err, &want_len);
    if (!want)
        fprintf(stderr, "missing golden file %s\n", err);
    const char *want_a = want ? arena_strndup(a, want, want_len) : "(missing)";
    free(want);
    assert_true(diag_has_errors(&d));       /* every golden case is an error case */
    assert_string_equal(got_a, want_a);
    arena_free(a);
}

#define GOLDEN_CASES(X) \
    X(lex_bad_char) X(lex_strings) X(lex_numbers) \
    X(syntax_expected) X(syntax_recovery) X(syntax_eof) X(syntax_empty) \
    X(syntax_two_models) X(syntax_outside) X(syntax_args) X(syntax_rank) \
    X(sema_undefined) X(sema_order) X(sema_duplicate) X(sema_assign) X(sema_calls) \
    X(sema_keywords) X(sema_config) X(sema_operators) X(sema_conditional) \
    X(sema_weights) X(sema_types) X(sema_kinds) X(sema_no_output)

#define GOLDEN_TEST(name) static void test_golden_##name(void **state) { (void)state; golden(#name); }
GOLDEN_CASES(GOLDEN_TEST)

#define GOLDEN_NAME(name) #name,
static const char *golden_names[] = { GOLDEN_CASES(GOLDEN_NAME) };

/* every .mdl in the golden folder is listed above (and so is run) */
static void test_golden_all_listed(void **state)
{
    (void)state;
    DIR *dir = opendir(GOLDEN_DIR);
    assert_non_null(dir);
    int unlisted = 0;
    for (struct dirent *ent; (ent = readdir(dir)) != NULL;) {
        size_t n = strlen(ent->d_name);
        if (n < 5 || strcmp(ent->d_name + n - 4, ".mdl") != 0)
            continue;
        bool found = false;
        for (size_t i = 0; i < sizeof golden_names / sizeof golden_names[0]; i++)
            found |= strlen(golden_names[i]) == n - 4 && strncmp(golden_names[i], ent->d_name, n - 4) == 0;
        if (!found) {
            fprintf(stderr, "%s/%s is not in GOLDEN_CASES\n", GOLDEN_DIR, ent->d_name);
            unlisted++;
        }
    }
    closedir(dir);
    assert_int_equal(unlisted, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define GOLDEN_ENTRY(name) cmocka_unit_test(test_golden_##name),

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_statements),
        T(test_types),
        T(test_precedence),
        T(test_locations),
        T(test_literals),
        T(test_call_args),
        T(test_layout_free),
        T(test_nested_repeat),
        T(test_scoping_ok),
        T(test_models),
        T(test_diag_format),
        T(test_did_you_mean),
        T(test_tab_caret),
        T(test_parse_error_skips_check),
        T(test_error_cap),
        T(test_missing_file),
        T(test_deep_parens),
        T(test_deep_calls),
        T(test_nesting_at_limit),
        T(test_deep_unary),
        T(test_long_chain),
        T(test_deep_repeat),
        T(test_huge_identifier),
        T(test_long_string),
        T(test_nul_byte),
        T(test_too_large),
        T(test_file_too_large),
        T(test_unterminated_string_at_eof),
        T(test_non_ascii),
        T(test_end_of_file_position),
        GOLDEN_CASES(GOLDEN_ENTRY)
        cmocka_unit_test(test_golden_all_listed),
    };
    return cmocka_run_group_tests_name("frontend", tests, NULL, NULL);
}
