/* tests/passes/test_passes.c — the pass pipeline, driven from spec text.
 *
 * Every test goes the way `modelc` does: fe_parse_string, fe_check, then
 * pass_run_pipeline with a CompileEnv (a config from rt_config_parse over a
 * JSON string, --set overrides, a checkpoint written to a mkdtemp directory),
 * and looks at the graph or at the diagnostics as diag_print renders them,
 * byte for byte.
 *
 *   lower   parameters from config (kinds, dotted keys, ??, defaults, null
 *           as missing), --set, missing keys, no config at all, repeat
 *           expansion, tied weights, weights checked against a checkpoint;
 *   infer   shape errors with file:line:col and caret, one error per fault;
 *   fold    merge_heads(split_heads(x)), common subexpressions, dead nodes;
 *   fuse    silu(a)*b, what is not absorbed, the operand and program limits,
 *           and a property: fused graphs compute what unfused ones do;
 *   plan    a property over models/llama.mdl and random specs: liveness
 *           recomputed here, no two overlapping nodes share a slot, views
 *           share their base's slot, slots are big enough;
 *   dumps   --print-after golden (tests/passes/golden/mlp.after-fuse.ir;
 *           MODELC_UPDATE_GOLDEN=1 rewrites it), --print-after-all.
 * Run from the repository root (tests/run_tests.py does). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontend/frontend.h"
#include "passes/passes.h"

#define GOLDEN_MLP "tests/passes/golden/mlp.after-fuse.ir"
#define MAX_CFG 64

/* ---- fixture ------------------------------------------------------------------- */

typedef struct Fx {
    Arena *a;
    RtConfig *cfgs[MAX_CFG];
    int ncfg;
    RtCheckpoint *ckpts[8];
    int nckpt;
    char dir[64];     /* mkdtemp, removed in teardown */
} Fx;

static int setup(void **state)
{
    Fx *f = calloc(1, sizeof *f);
    f->a = arena_new();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    Fx *f = *state;
    for (int i = 0; i < f->ncfg; i++)
        rt_config_free(f->cfgs[i]);
    for (int i = 0; i < f->nckpt; i++)
        rt_ckpt_close(f->ckpts[i]);
    if (f->dir[0])
        test_rm_rf(f->dir);
    arena_free(f->a);
    free(f);
    return 0;
}

/* What to compile with. */
typedef struct Opt {
    const char *config;          /* JSON text, or NULL for no config */
    const char *config_path;
    const RtCheckpoint *ckpt;
    const char *ckpt_path;
    int nset;
    const char *set_names[8], *set_values[8];
    DType weight_dt;
    const char *stop_after;
    const char *print_after;
    bool print_after_all;
    FILE *dump;
} Opt;

typedef struct Run {
    Compilation c;
    CompileEnv env;
    Diags d;
    bool ok;           /* parsed, checked and the pipeline succeeded */
    Graph *g;
} Run;

static RtConfig *config(Fx *f, const char *json)
{
    RtConfig *c = NULL;
    RtErr err = {.msg = ""};
    if (!rt_config_parse("config.json", json, strlen(json), &c, &err))
        fail_msg("bad test config: %s", err.msg);
    assert_true(f->ncfg < MAX_CFG);
    f->cfgs[f->ncfg++] = c;
    return c;
}

static Run *compile_file(Fx *f, const char *path, const char *text, const Opt *o)
{
    static const Opt none;
    if (!o)
        o = &none;
    Run *r = arena_alloc(f->a, sizeof *r);
    diag_init(&r->d, f->a);
    Module *m = text ? fe_parse_string(path, text, strlen(text), f->a, &r->d) : fe_parse_file(path, f->a, &r->d);
    if (!m || !fe_check(m, &r->d))
        return r;
    r->env = (CompileEnv){
        .config = o->config ? config(f, o->config) : NULL,
        .config_path = o->config_path,
        .ckpt = o->ckpt,
        .ckpt_path = o->ckpt_path,
        .nset = o->nset,
        .set_names = o->set_names,
        .set_values = o->set_values,
        .default_weight_dt = o->weight_dt,
    };
    r->c = (Compilation){.arena = f->a, .diags = &r->d, .module = m, .env = &r->env};
    PassOptions po = {.stop_after = o->stop_after, .print_after = o->print_after,
                      .print_after_all = o->print_after_all, .dump = o->dump};
    r->ok = pass_run_pipeline(&r->c, &po);
    r->g = r->c.graph;
    return r;
}

static Run *compile(Fx *f, const char *text, const Opt *o)
{
    return compile_file(f, "t.mdl", text, o);
}

/* everything diag_print writes */
static const char *rendered(Fx *f, const Run *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    assert_non_null(m);
    diag_print(&r->d, m);
    fclose(m);
    const char *s = arena_strndup(f->a, buf, len);
    free(buf);
    return s;
}

static const char *ir_text(Fx *f, const Graph *g)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    assert_non_null(m);
    ir_print(g, m);
    fclose(m);
    const char *s = arena_strndup(f->a, buf, len);
    free(buf);
    return s;
}

/* compile must succeed */
static Run *ok(Fx *f, const char *text, const Opt *o)
{
    Run *r = compile(f, text, o);
    if (!r->ok)
        fail_msg("compile failed:\n%s\nspec:\n%s", rendered(f, r), text);
    assert_int_equal(r->d.nerrors, 0);
    return r;
}

/* compile must fail and diag_print must write exactly want */
static void fails(Fx *f, const char *text, const Opt *o, const char *want)
{
    Run *r = compile(f, text, o);
    assert_false(r->ok);
    assert_string_equal(rendered(f, r), want);
}

/* ---- graph queries ------------------------------------------------------------------ */

static int count_op(const Graph *g, OpKind op)
{
    int k = 0;
    for (int i = 0; i < g->n; i++)
        k += g->nodes[i]->op == op;
    return k;
}

static Node *first_op(const Graph *g, OpKind op)
{
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i]->op == op)
            return g->nodes[i];
    fail_msg("no %s node", ir_op_name(op));
    return NULL;
}

static Node *weight_named(const Graph *g, const char *name)
{
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i]->op == OP_WEIGHT && !strcmp(g->nodes[i]->weight, name))
            return g->nodes[i];
    return NULL;
}

static Node *output_named(const Graph *g, const char *name)
{
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i]->output && !strcmp(g->nodes[i]->output, name))
            return g->nodes[i];
    fail_msg("no output '%s'", name);
    return NULL;
}

static const char *shape_of(Fx *f, const Node *n)
{
    return arena_printf(f->a, "%s%s", ir_dtype_name(n->dt), ir_shape_str(f->a, n));
}

/* The shape of weight "w" in a spec whose only point is a parameter value. */
static const char *w_shape(Fx *f, const Run *r)
{
    Node *w = weight_named(r->g, "w");
    assert_non_null(w);
    return ir_shape_str(f->a, w);
}

/* A spec with parameter p = EXPR shown as weight w : [p]. */
static const char *param_spec(Fx *f, const char *expr)
{
    return arena_printf(f->a,
                        "model m {\n"
                        "  param p = %s\n"
                        "  input x : f32[seq, p]\n"
                        "  weight w : [p] = \"w\"\n"
                        "  output y = rms_norm(x, w, 1e-5)\n"
                        "}\n",
                        expr);
}

static const char *param_value(Fx *f, const char *expr, const char *cfg)
{
    Opt o = {.config = cfg};
    return w_shape(f, ok(f, param_spec(f, expr), &o));
}

/* ---- lower: parameters ---------------------------------------------------------------- */

static const char bind_spec[] =
    "model m {\n"
    "  param d    = config(\"dim\")\n"
    "  param h    = config(\"heads\")\n"
    "  param eps  = config(\"eps\")\n"
    "  param th   = config(\"rope.theta\")\n"
    "  param kind = config(\"rope.type\")\n"
    "  param fac  = config(\"rope.factor\")\n"
    "  param tied = config(\"tied\")\n"
    "  input x : f32[seq, d]\n"
    "  weight n  : [d]    = \"n\"\n"
    "  weight e  : [d, d] = \"e\"\n"
    "  weight hd : [d, d] = tied ? e : \"head\"\n"
    "  y = rope(split_heads(rms_norm(x, n, eps), h), theta: th, type: kind, factor: fac)\n"
    "  output o = linear(merge_heads(y), hd)\n"
    "}\n";

static void test_bind_kinds(void **state)
{
    Fx *f = *state;
    Opt o = {.config = "{\"dim\": 24, \"heads\": 3, \"eps\": 1e-6, \"tied\": true,"
                       " \"rope\": {\"theta\": 500000.0, \"type\": \"llama3\", \"factor\": 32}}"};
    Run *r = ok(f, bind_spec, &o);
    assert_false(r->c.unbound);
    Graph *g = r->g;
    assert_string_equal(g->name, "m");
    Node *x = first_op(g, OP_INPUT);
    assert_string_equal(shape_of(f, x), "f32[seq, 24]");
    Node *norm = first_op(g, OP_RMS_NORM);
    assert_true(norm->a.eps == 1e-6);
    Node *sh = first_op(g, OP_SPLIT_HEADS);
    assert_int_equal(sh->a.heads, 3);
    assert_string_equal(shape_of(f, sh), "f32[seq, 3, 8]");
    Node *rope = first_op(g, OP_ROPE);
    assert_true(rope->a.rope.theta == 500000.0);
    assert_true(rope->a.rope.llama3);
    assert_true(rope->a.rope.factor == 32.0);    /* an int from JSON where a number is wanted */
    assert_true(rope->a.rope.low_freq == 1.0);
    assert_true(rope->a.rope.high_freq == 4.0);
    assert_int_equal(rope->a.rope.orig_ctx, 8192);
    /* tied: the head is the embedding's node; "head" is never bound */
    assert_null(weight_named(g, "head"));
    Node *out = output_named(g, "o");
    assert_int_equal(out->op, OP_LINEAR);
    assert_ptr_equal(out->src[1], weight_named(g, "e"));
    assert_string_equal(shape_of(f, out), "f32[seq, 24]");

    /* the other way: untied, default rope */
    Opt o2 = {.config = "{\"dim\": 8, \"heads\": 2, \"eps\": 0.5, \"tied\": false,"
                        " \"rope\": {\"theta\": 10000, \"type\": \"default\", \"factor\": 1}}"};
    r = ok(f, bind_spec, &o2);
    g = r->g;
    assert_non_null(weight_named(g, "head"));
    assert_ptr_equal(output_named(g, "o")->src[1], weight_named(g, "head"));
    assert_true(first_op(g, OP_RMS_NORM)->a.eps == 0.5);
    assert_false(first_op(g, OP_ROPE)->a.rope.llama3);
    assert_true(first_op(g, OP_ROPE)->a.rope.theta == 10000.0);
}

static void test_bind_coalesce(void **state)
{
    Fx *f = *state;
    const char *e = "config(\"a\") ?? config(\"b.c\") ?? 7";
    assert_string_equal(param_value(f, e, "{\"a\": 3, \"b\": {\"c\": 5}}"), "[3]");
    assert_string_equal(param_value(f, e, "{\"b\": {\"c\": 5}}"), "[5]");
    assert_string_equal(param_value(f, e, "{\"b\": {\"d\": 5}}"), "[7]");
    assert_string_equal(param_value(f, e, "{\"b\": 5}"), "[7]");        /* b is not an object */
    assert_string_equal(param_value(f, e, "{}"), "[7]");
    /* null is missing */
    assert_string_equal(param_value(f, e, "{\"a\": null, \"b\": {\"c\": null}}"), "[7]");
    assert_string_equal(param_value(f, e, "{\"a\": null, \"b\": {\"c\": 2}}"), "[2]");
    /* a found value is taken whatever it is: 0 and false are values */
    assert_string_equal(param_value(f, "(config(\"z\") ?? 9) + 1", "{\"z\": 0}"), "[1]");
}

static void test_bind_defaults(void **state)
{
    Fx *f = *state;
    assert_string_equal(param_value(f, "config(\"a\", 6)", "{}"), "[6]");
    assert_string_equal(param_value(f, "config(\"a\", 6)", "{\"a\": 4}"), "[4]");
    assert_string_equal(param_value(f, "config(\"a\", 6)", "{\"a\": null}"), "[6]");
    /* the default may be an expression over other parameters, as head_dim's is */
    static const char spec[] =
        "model m {\n"
        "  param dim = config(\"hidden_size\")\n"
        "  param heads = config(\"num_attention_heads\")\n"
        "  param hd = config(\"head_dim\", dim / heads)\n"
        "  input x : f32[seq, hd * 2]\n"
        "  weight w : [hd * 2] = \"w\"\n"
        "  output y = rms_norm(x, w, 1e-5)\n"
        "}\n";
    Opt o = {.config = "{\"hidden_size\": 64, \"num_attention_heads\": 4}"};
    assert_string_equal(w_shape(f, ok(f, spec, &o)), "[32]");
    Opt o2 = {.config = "{\"hidden_size\": 64, \"num_attention_heads\": 4, \"head_dim\": 24}"};
    assert_string_equal(w_shape(f, ok(f, spec, &o2)), "[48]");
    Opt o3 = {.config = "{\"hidden_size\": 64, \"num_attention_heads\": 4, \"head_dim\": null}"};
    assert_string_equal(w_shape(f, ok(f, spec, &o3)), "[32]");
    /* a nested default that is itself a lookup */
    assert_string_equal(param_value(f, "config(\"a\", config(\"b\", 5))", "{\"b\": 3}"), "[3]");
    assert_string_equal(param_value(f, "config(\"a\", config(\"b\", 5))", "{}"), "[5]");
    /* parameter arithmetic and conditions on bools and strings */
    assert_string_equal(param_value(f, "config(\"t\") ? 2 : 3", "{\"t\": true}"), "[2]");
    assert_string_equal(param_value(f, "config(\"t\") ? 2 : 3", "{\"t\": false}"), "[3]");
    assert_string_equal(param_value(f, "config(\"s\") == \"x\" ? 2 : 3", "{\"s\": \"x\"}"), "[2]");
    assert_string_equal(param_value(f, "config(\"s\") == \"x\" ? 2 : 3", "{\"s\": \"y\"}"), "[3]");
    assert_string_equal(param_value(f, "config(\"n\") % 5 + 10 / 3", "{\"n\": 17}"), "[5]");
}

static void test_missing_key(void **state)
{
    Fx *f = *state;
    Opt o = {.config = "{\"other\": 1}"};
    fails(f, param_spec(f, "config(\"hidden_size\")"), &o,
          "t.mdl:2:13: error: config.json has no key 'hidden_size' and the spec gives no default\n"
          "    2 |   param p = config(\"hidden_size\")\n"
          "      |             ^\n");
    /* a null is as good as missing; the message names the config file given */
    Opt o2 = {.config = "{\"hidden_size\": null}", .config_path = "ckpt/config.json"};
    fails(f, param_spec(f, "config(\"hidden_size\")"), &o2,
          "t.mdl:2:13: error: ckpt/config.json has no key 'hidden_size' and the spec gives no default\n"
          "    2 |   param p = config(\"hidden_size\")\n"
          "      |             ^\n");
    /* at the end of a ?? chain the last key is named */
    Run *r = compile(f, param_spec(f, "config(\"a\") ?? config(\"b.c\")"), &o);
    assert_false(r->ok);
    assert_int_equal(r->d.nerrors, 1);
    assert_string_equal(r->d.head->msg, "config.json has no key 'b.c' and the spec gives no default");
    /* a missing key inside a default */
    r = compile(f, param_spec(f, "config(\"a\", config(\"b\") * 2)"), &o);
    assert_false(r->ok);
    assert_string_equal(r->d.head->msg, "config.json has no key 'b' and the spec gives no default");
    /* not a scalar */
    Opt o3 = {.config = "{\"hidden_size\": [1, 2]}", .config_path = "c.json"};
    r = compile(f, param_spec(f, "config(\"hidden_size\")"), &o3);
    assert_false(r->ok);
    assert_string_equal(r->d.head->msg, "c.json: key 'hidden_size' is an array or object, not a number, bool or string");
    assert_int_equal(r->d.head->loc.line, 2);
    assert_int_equal(r->d.head->loc.col, 13);
}

static void test_set_overrides(void **state)
{
    Fx *f = *state;
    static const char spec[] =
        "model m {\n"
        "  param d    = config(\"dim\")\n"
        "  param eps  = config(\"eps\", 1e-5)\n"
        "  param th   = config(\"theta\", 10000.0)\n"
        "  param kind = config(\"kind\", \"default\")\n"
        "  param tied = config(\"tied\", false)\n"
        "  input x : f32[seq, d]\n"
        "  weight e  : [d, d] = \"e\"\n"
        "  weight n  : [d]    = \"n\"\n"
        "  weight hd : [d, d] = tied ? e : \"head\"\n"
        "  y = rope(split_heads(rms_norm(x, n, eps), 2), theta: th, type: kind)\n"
        "  output o = linear(merge_heads(y), hd)\n"
        "}\n";
    /* --set beats the config */
    Opt o = {.config = "{\"dim\": 8, \"tied\": false}",
             .nset = 5,
             .set_names = {"d", "eps", "th", "kind", "tied"},
             .set_values = {"12", "0.25", "1e6", "llama3", "true"}};
    Run *r = ok(f, spec, &o);
    Graph *g = r->g;
    assert_string_equal(shape_of(f, first_op(g, OP_INPUT)), "f32[seq, 12]");
    assert_true(first_op(g, OP_RMS_NORM)->a.eps == 0.25);
    assert_true(first_op(g, OP_ROPE)->a.rope.theta == 1e6);
    assert_true(first_op(g, OP_ROPE)->a.rope.llama3);
    assert_null(weight_named(g, "head"));

    /* --set binds a parameter with no config at all */
    Opt o2 = {.nset = 1, .set_names = {"d"}, .set_values = {"4"}};
    r = ok(f, spec, &o2);
    assert_false(r->c.unbound);
    assert_string_equal(shape_of(f, first_op(r->g, OP_INPUT)), "f32[seq, 4]");
    assert_non_null(weight_named(r->g, "head"));
    assert_true(first_op(r->g, OP_RMS_NORM)->a.eps == 1e-5);

    /* an unknown name is an error naming it, with no position */
    Opt o3 = {.config = "{\"dim\": 8}", .nset = 2, .set_names = {"d", "nope"}, .set_values = {"4", "1"}};
    fails(f, spec, &o3, "modelc: error: --set nope: the spec has no parameter 'nope'\n");

    /* the same name twice: the last one wins, and neither is "unknown" */
    Opt o5 = {.nset = 2, .set_names = {"d", "d"}, .set_values = {"4", "8"}};
    r = ok(f, spec, &o5);
    assert_string_equal(shape_of(f, first_op(r->g, OP_INPUT)), "f32[seq, 8]");

    /* a string where a dimension is wanted */
    Opt o4 = {.nset = 1, .set_names = {"d"}, .set_values = {"big"}};
    r = compile(f, spec, &o4);
    assert_false(r->ok);
    assert_string_equal(r->d.head->msg, "a dimension must be an integer");
}

/* No config: parameters stay unknown, dims are DIM_UNKNOWN, and that is no error. */
static void test_no_config(void **state)
{
    Fx *f = *state;
    Run *r = ok(f, bind_spec, NULL);
    assert_true(r->c.unbound);
    Graph *g = r->g;
    assert_string_equal(shape_of(f, first_op(g, OP_INPUT)), "f32[seq, ?]");
    assert_int_equal(first_op(g, OP_SPLIT_HEADS)->a.heads, DIM_UNKNOWN);
    assert_string_equal(shape_of(f, output_named(g, "o")), "f32[seq, ?]");
    /* an unknown condition takes the else branch: the untied head */
    assert_non_null(weight_named(g, "head"));
    /* unknown attributes print as '?' too */
    assert_non_null(strstr(ir_text(f, g), "split_heads(%3) {heads=?} : f32[seq, ?, ?]"));

    /* models/llama.mdl: every stage runs, nothing is planned */
    r = compile_file(f, "models/llama.mdl", NULL, NULL);
    if (!r->ok)
        fail_msg("%s", rendered(f, r));
    assert_true(r->c.unbound);
    assert_int_equal(r->d.nerrors, 0);
    Node *logits = output_named(r->g, "logits");
    assert_string_equal(shape_of(f, logits), "f32[seq, ?]");
    /* an unknown repeat count expands the body once, outside any layer */
    assert_int_equal(count_op(r->g, OP_ATTENTION), 1);
    assert_non_null(weight_named(r->g, "model.layers.{i}.self_attn.q_proj.weight"));

    /* defaults everywhere: bound without a config */
    r = compile_file(f, "models/mlp.mdl", NULL, NULL);
    assert_true(r->ok);
    assert_false(r->c.unbound);
    assert_string_equal(shape_of(f, output_named(r->g, "logits")), "f32[seq, 64]");
}

/* An unbound condition makes an unbound scalar: `modelc check` without a
 * config must not pick a branch and then report errors the config would not. */
static void test_unknown_condition(void **state)
{
    Fx *f = *state;
    static const char spec[] =
        "model m {\n"
        "  param c = config(\"c\")\n"
        "  param d = c ? 7 : 8\n"
        "  param e = c ? 4 : 4\n"
        "  input x : f32[seq, 7]\n"
        "  weight w : [d] = \"w\"\n"
        "  weight v : [e] = \"v\"\n"
        "  output y = rms_norm(x, w, 1e-5)\n"
        "  output z = silu(v)\n"
        "}\n";
    Run *r = ok(f, spec, NULL);
    assert_true(r->c.unbound);
    assert_string_equal(shape_of(f, weight_named(r->g, "w")), "f32[?]");
    assert_string_equal(shape_of(f, weight_named(r->g, "v")), "f32[4]");   /* both branches agree */
    Opt o = {.config = "{\"c\": true}"};
    r = ok(f, spec, &o);
    assert_string_equal(shape_of(f, weight_named(r->g, "w")), "f32[7]");
    Opt o2 = {.config = "{\"c\": false}"};
    r = compile(f, spec, &o2);
    assert_false(r->ok);
    assert_string_equal(r->d.head->msg, "'rms_norm' weight does not match the last dim: shapes [seq, 7] and [8] do not agree");
}

/* Found by fuzz_spec: an absurd shape overflowed the planner's byte count
 * (signed overflow, UB).  Now a diagnostic. */
static void test_plan_too_large(void **state)
{
    Fx *f = *state;
    Run *r = compile(f, "model m {\n  input t : f32[seq, 1099511627776, 4194304]\n  output o = silu(t)\n}\n", NULL);
    assert_false(r->ok);
    assert_non_null(strstr(rendered(f, r), "too large to plan (more than 2^40 bytes)"));
    r = compile(f, "model m {\n  input t : f32[seq, 1099511627776, 1099511627776, 8]\n  output o = silu(t)\n}\n", NULL);
    assert_false(r->ok);
    assert_non_null(strstr(rendered(f, r), "too large to plan"));
}

/* Found by fuzz_spec: nested repeats multiplied the graph until memory ran
 * out.  Lowering stops at LOWER_MAX_NODES with a diagnostic. */
static void test_expansion_capped(void **state)
{
    Fx *f = *state;
    Run *r = compile(f, "model m {\n  input t : i32[seq]\n  weight e : [8, 8] = \"e\"\n  x = embedding(e, t)\n"
                        "  repeat i < 100000 { x = x + x\n x = x * x\n x = x - x\n x = x + x\n x = x * x\n x = x - x\n"
                        "    x = x + x\n x = x * x\n x = x - x\n x = x + x\n x = x * x\n x = x - x }\n"
                        "  output o = x\n}\n", NULL);
    assert_false(r->ok);
    assert_non_null(strstr(rendered(f, r), "the model expands to more than 1048576 graph nodes"));
}

/* Found by fuzz_spec: nested repeats with empty bodies create no nodes but
 * ran 10^10 iterations.  Lowering stops past LOWER_MAX_ITERATIONS. */
static void test_iterations_capped(void **state)
{
    Fx *f = *state;
    Run *r = compile(f, "model m {\n  input t : i32[seq]\n  weight e : [8, 8] = \"e\"\n"
                        "  repeat i < 100000 { repeat j < 100000 { } }\n  output o = embedding(e, t)\n}\n", NULL);
    assert_false(r->ok);
    assert_non_null(strstr(rendered(f, r), "repeat blocks run more than 1048576 iterations in all"));
}

/* Two outputs bound to one value: rejected, never one dropped in silence. */
static void test_two_outputs_one_value(void **state)
{
    Fx *f = *state;
    Run *r = compile(f, "model m {\n  input x : f32[seq, 4]\n  y = silu(x)\n  output a = y\n  output b = y\n}\n", NULL);
    assert_false(r->ok);
    assert_non_null(strstr(rendered(f, r), "output 'b' is the same value as output 'a'"));
}

/* ---- lower: repeat, tied weights ---------------------------------------------------- */

static Run *mlp_layers(Fx *f, const char *n, const char *stop)
{
    Opt o = {.nset = 1, .set_names = {"n_layers"}, .set_values = {n}, .stop_after = stop};
    Run *r = compile_file(f, "models/mlp.mdl", NULL, &o);
    if (!r->ok)
        fail_msg("%s", rendered(f, r));
    return r;
}

static void test_repeat_expansion(void **state)
{
    Fx *f = *state;
    int counts[5];
    for (int n = 0; n < 5; n++) {
        Graph *g = mlp_layers(f, arena_printf(f->a, "%d", n), "lower")->g;
        counts[n] = g->n;
        for (int i = 0; i < 6; i++) {
            const char *gate = arena_printf(f->a, "layers.%d.gate.weight", i);
            const char *down = arena_printf(f->a, "layers.%d.down.weight", i);
            if (i < n) {
                Node *w = weight_named(g, gate);
                assert_non_null(w);
                assert_int_equal(w->layer, i);
                assert_string_equal(shape_of(f, w), "f32[48, 32]");
                assert_non_null(weight_named(g, down));
            } else {
                assert_null(weight_named(g, gate));
            }
        }
        assert_int_equal(count_op(g, OP_SILU), n);
        for (int i = 0; i < g->n; i++)
            assert_true(g->nodes[i]->layer >= -1 && g->nodes[i]->layer < n);
        assert_int_equal(first_op(g, OP_EMBEDDING)->layer, -1);
    }
    /* each layer adds the same number of nodes */
    int per = counts[1] - counts[0];
    assert_true(per > 0);
    for (int n = 1; n < 5; n++)
        assert_int_equal(counts[n] - counts[n - 1], per);

    /* the residual stream threads through the layers: layer 1 reads layer 0's output */
    Graph *g = mlp_layers(f, "2", NULL)->g;
    Node *l1 = NULL;
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i]->op == OP_RMS_NORM && g->nodes[i]->layer == 1)
            l1 = g->nodes[i];
    assert_non_null(l1);
    assert_int_equal(l1->src[0]->op, OP_ADD);
    assert_int_equal(l1->src[0]->layer, 0);

    /* placeholders and nested repeats */
    static const char spec[] =
        "model m {\n"
        "  input x : f32[seq, 4]\n"
        "  y = x\n"
        "  repeat i < 2 {\n"
        "    repeat j < 3 {\n"
        "      weight w : [4] = \"b{i}.{j}.w{i}{j}\"\n"
        "      y = rms_norm(y, w, 1e-5)\n"
        "    }\n"
        "  }\n"
        "  output o = y\n"
        "}\n";
    Run *r = ok(f, spec, NULL);
    assert_int_equal(count_op(r->g, OP_RMS_NORM), 6);
    assert_non_null(weight_named(r->g, "b0.0.w00"));
    assert_non_null(weight_named(r->g, "b1.2.w12"));
    assert_int_equal(weight_named(r->g, "b1.2.w12")->layer, 2);   /* the innermost iteration */

    /* a bad count */
    Opt o = {.config = "{\"n\": -1}"};
    fails(f,
          "model m {\n  param n = config(\"n\")\n  input x : f32[seq, 4]\n  y = x\n  repeat i < n { y = silu(y) }\n"
          "  output o = y\n}\n",
          &o,
          "t.mdl:5:14: error: repeat count -1 is out of range (0 to 100000)\n"
          "    5 |   repeat i < n { y = silu(y) }\n"
          "      |              ^\n");
}

static void test_tied_weights(void **state)
{
    Fx *f = *state;
    static const char llama_cfg[] =
        "{\"vocab_size\": 64, \"hidden_size\": 32, \"num_hidden_layers\": 2, \"num_attention_heads\": 4,"
        " \"num_key_value_heads\": 2, \"intermediate_size\": 48, \"tie_word_embeddings\": %s}";
    Opt o = {.config = arena_printf(f->a, llama_cfg, "true")};
    Run *r = compile_file(f, "models/llama.mdl", NULL, &o);
    assert_true(r->ok);
    Graph *g = r->g;
    assert_null(weight_named(g, "lm_head.weight"));
    Node *embed = weight_named(g, "model.embed_tokens.weight");
    assert_non_null(embed);
    Node *logits = output_named(g, "logits");
    assert_ptr_equal(logits->src[1], embed);
    assert_ptr_equal(first_op(g, OP_EMBEDDING)->src[0], embed);
    int nweights = count_op(g, OP_WEIGHT);
    assert_int_equal(nweights, 2 + 2 * 9);

    Opt o2 = {.config = arena_printf(f->a, llama_cfg, "false")};
    r = compile_file(f, "models/llama.mdl", NULL, &o2);
    assert_true(r->ok);
    assert_non_null(weight_named(r->g, "lm_head.weight"));
    assert_ptr_equal(output_named(r->g, "logits")->src[1], weight_named(r->g, "lm_head.weight"));
    assert_int_equal(count_op(r->g, OP_WEIGHT), nweights + 1);

    /* two statements naming one tensor share its node */
    static const char spec[] =
        "model m {\n"
        "  input x : f32[seq, 4]\n"
        "  weight a : [4] = \"shared\"\n"
        "  weight b : [4] = \"shared\"\n"
        "  output y = rms_norm(x, a, 1e-5) + rms_norm(x, b, 1e-6)\n"
        "}\n";
    r = ok(f, spec, NULL);
    assert_int_equal(count_op(r->g, OP_WEIGHT), 1);
    assert_int_equal(count_op(r->g, OP_RMS_NORM), 2);   /* eps differ: not one subexpression */

    /* ... but not with another shape */
    fails(f,
          "model m {\n"
          "  input x : f32[seq, 4]\n"
          "  weight a : [4] = \"shared\"\n"
          "  weight b : [4, 4] = \"shared\"\n"
          "  output y = linear(x, b)\n"
          "}\n",
          NULL,
          "t.mdl:4:23: error: weight 'shared' is used again with another shape\n"
          "    4 |   weight b : [4, 4] = \"shared\"\n"
          "      |                       ^\n");
}

/* ---- lower: weights against a checkpoint --------------------------------------------- */

typedef struct TensorSpec {
    const char *name, *dtype;
    int rank;
    int64_t shape[4];
} TensorSpec;

static size_t st_dtype_size(const char *dt)
{
    return !strcmp(dt, "F32") || !strcmp(dt, "I32") ? 4 : !strcmp(dt, "F16") || !strcmp(dt, "BF16") ? 2 : 1;
}

/* dir/file.safetensors with zero-filled tensors; returns its path. */
static const char *write_safetensors(Fx *f, const char *file, const TensorSpec *ts, int n)
{
    if (!f->dir[0]) {
        strcpy(f->dir, "/tmp/modelc_test_passes_XXXXXX");
        assert_non_null(mkdtemp(f->dir));
    }
    char *hdr = arena_strdup(f->a, "{");
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        char *shape = arena_strdup(f->a, "");
        for (int k = 0; k < ts[i].rank; k++) {
            numel *= (size_t)ts[i].shape[k];
            shape = arena_printf(f->a, "%s%s%lld", shape, k ? ", " : "", (long long)ts[i].shape[k]);
        }
        size_t bytes = numel * st_dtype_size(ts[i].dtype);
        hdr = arena_printf(f->a, "%s%s\"%s\": {\"dtype\": \"%s\", \"shape\": [%s], \"data_offsets\": [%zu, %zu]}",
                           hdr, i ? ", " : "", ts[i].name, ts[i].dtype, shape, at, at + bytes);
        at += bytes;
    }
    hdr = arena_printf(f->a, "%s}", hdr);
    const char *path = arena_printf(f->a, "%s/%s", f->dir, file);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    uint64_t hl = strlen(hdr);
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(hl >> (8 * i));
    assert_int_equal(fwrite(le, 1, 8, fp), 8);
    assert_int_equal(fwrite(hdr, 1, hl, fp), hl);
    for (size_t i = 0; i < at; i++)
        fputc(0, fp);
    assert_int_equal(fclose(fp), 0);
    return path;
}

static const RtCheckpoint *open_ckpt(Fx *f, const char *path)
{
    RtCheckpoint *c = NULL;
    RtErr err = {.msg = ""};
    if (!rt_ckpt_open(path, &c, &err))
        fail_msg("rt_ckpt_open: %s", err.msg);
    f->ckpts[f->nckpt++] = c;
    return c;
}

static void test_weights_from_checkpoint(void **state)
{
    Fx *f = *state;
    static const TensorSpec ts[] = {
        {"w_f16", "F16", 2, {4, 6}},
        {"w_bf16", "BF16", 2, {4, 6}},
        {"w_f32", "F32", 2, {4, 6}},
        {"w_i32", "I32", 2, {4, 6}},
        {"n", "F32", 1, {6}},
    };
    const char *path = write_safetensors(f, "m.safetensors", ts, 5);
    const RtCheckpoint *ck = open_ckpt(f, path);
    Opt o = {.ckpt = ck, .ckpt_path = path};

    /* no dtype in the spec: the checkpoint's; a dtype in the spec: must match */
    static const char good[] =
        "model m {\n"
        "  param d = config(\"d\")\n"
        "  input x : f32[seq, 6]\n"
        "  weight a : [4, 6] = \"w_f16\"\n"
        "  weight b : bf16[4, 6] = \"w_bf16\"\n"
        "  weight c : [d, 6] = \"w_f32\"\n"
        "  output y = linear(x, a) + linear(x, b) + linear(x, c)\n"
        "}\n";
    Run *r = ok(f, good, &o);
    assert_int_equal(weight_named(r->g, "w_f16")->dt, DT_F16);
    assert_int_equal(weight_named(r->g, "w_bf16")->dt, DT_BF16);
    /* an unbound dim takes the checkpoint's */
    assert_string_equal(shape_of(f, weight_named(r->g, "w_f32")), "f32[4, 6]");
    assert_true(r->c.unbound);

    /* without a checkpoint: the spec's dtype, else --weight-dtype, else f32 */
    Opt nock = {.weight_dt = DT_BF16};
    r = ok(f, good, &nock);
    assert_int_equal(weight_named(r->g, "w_f16")->dt, DT_BF16);
    r = ok(f, good, NULL);
    assert_int_equal(weight_named(r->g, "w_f16")->dt, DT_F32);
    assert_int_equal(weight_named(r->g, "w_bf16")->dt, DT_BF16);

    /* wrong dtype */
    fails(f,
          "model m {\n  input x : f32[seq, 6]\n  weight a : f32[4, 6] = \"w_f16\"\n  output y = linear(x, a)\n}\n",
          &o,
          arena_printf(f->a,
                       "t.mdl:3:26: error: weight 'w_f16' is f16 in %s, the spec says f32\n"
                       "    3 |   weight a : f32[4, 6] = \"w_f16\"\n"
                       "      |                          ^\n",
                       path));
    /* wrong shape */
    fails(f,
          "model m {\n  input x : f32[seq, 4]\n  weight a : [6, 4] = \"w_f32\"\n  output y = linear(x, a)\n}\n",
          &o,
          arena_printf(f->a,
                       "t.mdl:3:23: error: weight 'w_f32' is [4, 6] in %s, the spec says [6, 4]\n"
                       "    3 |   weight a : [6, 4] = \"w_f32\"\n"
                       "      |                       ^\n",
                       path));
    r = compile(f, "model m {\n  input x : f32[seq, 6]\n  weight a : [6] = \"w_f32\"\n  output y = rms_norm(x, a, 1e-5)\n}\n",
                &o);
    assert_false(r->ok);
    assert_string_equal(r->d.head->msg, arena_printf(f->a, "weight 'w_f32' is [4, 6] in %s, the spec says [6]", path));
    /* an unbound dim next to a wrong one reads as '?' */
    r = compile(f,
                "model m {\n  param d = config(\"d\")\n  input x : f32[seq, 5]\n  weight a : [d, 5] = \"w_f32\"\n"
                "  output y = linear(x, a)\n}\n",
                &o);
    assert_false(r->ok);
    assert_string_equal(r->d.head->msg, arena_printf(f->a, "weight 'w_f32' is [4, 6] in %s, the spec says [?, 5]", path));
    /* missing */
    fails(f,
          "model m {\n  input x : f32[seq, 6]\n  weight a : [4, 6] = \"nope\"\n  output y = linear(x, a)\n}\n",
          &o,
          arena_printf(f->a,
                       "t.mdl:3:23: error: weight 'nope' is not in the checkpoint %s\n"
                       "    3 |   weight a : [4, 6] = \"nope\"\n"
                       "      |                       ^\n",
                       path));
    /* a dtype the kernels do not take */
    r = compile(f, "model m {\n  input x : f32[seq, 6]\n  weight a : [4, 6] = \"w_i32\"\n  output y = linear(x, a)\n}\n",
                &o);
    assert_false(r->ok);
    assert_string_equal(r->d.head->msg, "weight 'w_i32' has dtype I32 in the checkpoint; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1");
    /* every fault is reported, not just the first */
    r = compile(f,
                "model m {\n  input x : f32[seq, 6]\n  weight a : [4, 6] = \"nope\"\n  weight b : f32[4, 6] = \"w_f16\"\n"
                "  output y = linear(x, a) + linear(x, b)\n}\n",
                &o);
    assert_false(r->ok);
    assert_int_equal(r->d.nerrors, 2);
}

/* ---- infer: shape errors --------------------------------------------------------------- */

static void test_shape_errors(void **state)
{
    Fx *f = *state;
    fails(f,
          "model m {\n"
          "  input x : f32[seq, 8]\n"
          "  weight w : [4, 6] = \"w\"\n"
          "  output y = linear(x, w)\n"
          "}\n",
          NULL,
          "t.mdl:4:14: error: 'linear' inner dims differ: shapes [seq, 8] and [4, 6] do not agree\n"
          "    4 |   output y = linear(x, w)\n"
          "      |              ^\n");
    /* tensor arithmetic points at the operator */
    fails(f,
          "model m {\n"
          "  input x : f32[seq, 8]\n"
          "  input z : f32[seq, 4]\n"
          "  output y = silu(x) +   z\n"
          "}\n",
          NULL,
          "t.mdl:4:22: error: 'add' operands: shapes [seq, 8] and [seq, 4] do not agree\n"
          "    4 |   output y = silu(x) +   z\n"
          "      |                      ^\n");
    /* one mistake, one error: what reads a failed node is skipped */
    Run *r = compile(f,
                     "model m {\n"
                     "  input x : f32[seq, 8]\n"
                     "  weight w : [4, 6] = \"w\"\n"
                     "  a = linear(x, w)\n"
                     "  b = silu(a) * a\n"
                     "  output y = split_heads(b, 3)\n"
                     "}\n",
                     NULL);
    assert_false(r->ok);
    assert_int_equal(r->d.nerrors, 1);
    /* two independent mistakes, two errors, in source order */
    fails(f,
          "model m {\n"
          "  param d = config(\"d\", 10)\n"
          "  input x : f32[seq, d]\n"
          "  a = split_heads(x, 4)\n"
          "  b = rope(split_heads(x, 2))\n"
          "  output y = merge_heads(a) + merge_heads(b)\n"
          "}\n",
          NULL,
          "t.mdl:4:7: error: 'split_heads': last dim 10 is not divisible by 4 heads\n"
          "    4 |   a = split_heads(x, 4)\n"
          "      |       ^\n"
          "t.mdl:5:7: error: 'rope' needs an even head_dim, got 5\n"
          "    5 |   b = rope(split_heads(x, 2))\n"
          "      |       ^\n");
    /* seq is not a feature dim: it cannot be split or merged */
    fails(f,
          "model m {\n  input x : f32[seq]\n  output y = silu(split_heads(x, 2))\n}\n",
          NULL,
          "t.mdl:3:19: error: 'split_heads' cannot split the symbolic dim seq\n"
          "    3 |   output y = silu(split_heads(x, 2))\n"
          "      |                   ^\n");
    r = compile(f, "model m {\n  input x : f32[seq, 8]\n  output y = silu(merge_heads(x))\n}\n", NULL);
    assert_false(r->ok);
    assert_string_equal(r->d.head->msg, "'merge_heads' cannot merge the symbolic dim seq");
    r = compile(f, "model m {\n  input x : f32[4, seq]\n  output y = silu(merge_heads(x))\n}\n", NULL);
    assert_false(r->ok);
    assert_string_equal(r->d.head->msg, "'merge_heads' cannot merge the symbolic dim seq");
    ok(f, "model m {\n  input x : f32[seq, 2, 4]\n  output y = silu(merge_heads(x))\n}\n", NULL);

    /* symbolic dims other than one seq cannot be planned (batch 1 only, for now) */
    fails(f,
          "model m {\n  input x : f32[batch, seq, 4]\n  output y = silu(x)\n}\n",
          NULL,
          "t.mdl:3:14: error: 'silu' has shape [batch, seq, 4], which cannot be planned "
          "(only one seq dim and concrete dims are supported)\n"
          "    3 |   output y = silu(x)\n"
          "      |              ^\n");

    /* GQA ratio from the config */
    Opt o = {.config = "{\"h\": 6, \"kv\": 4}"};
    r = compile(f,
                "model m {\n"
                "  param h = config(\"h\")\n"
                "  param kv = config(\"kv\")\n"
                "  input x : f32[seq, 48]\n"
                "  q = split_heads(x, h)\n"
                "  k = split_heads(x, kv)\n"
                "  output y = merge_heads(attention(q, k, k))\n"
                "}\n",
                &o);
    assert_false(r->ok);
    /* head_dim differs first (8 vs 12) */
    assert_string_equal(r->d.head->msg, "'attention': q [seq, 6, 8] and k [seq, 4, 12] differ in head_dim");
}

/* ---- fold ------------------------------------------------------------------------------- */

static void test_fold_reshapes(void **state)
{
    Fx *f = *state;
    static const char spec[] =
        "model m {\n"
        "  input x : f32[seq, 8]\n"
        "  weight w : [8, 8] = \"w\"\n"
        "  h = linear(x, w)\n"
        "  y = merge_heads(split_heads(h, 2))\n"
        "  output o = linear(y, w)\n"
        "}\n";
    Opt o = {.stop_after = "infer"};
    Run *r = ok(f, spec, &o);
    assert_int_equal(count_op(r->g, OP_SPLIT_HEADS), 1);
    assert_int_equal(count_op(r->g, OP_MERGE_HEADS), 1);
    Opt o2 = {.stop_after = "fold"};
    r = ok(f, spec, &o2);
    assert_int_equal(count_op(r->g, OP_SPLIT_HEADS), 0);
    assert_int_equal(count_op(r->g, OP_MERGE_HEADS), 0);
    Node *out = output_named(r->g, "o");
    assert_int_equal(out->src[0]->op, OP_LINEAR);
    assert_ptr_equal(out->src[0]->src[0], first_op(r->g, OP_INPUT));
    assert_int_equal(count_op(r->g, OP_LINEAR), 2);

    /* a pair that does not undo itself stays: attention sits between */
    r = ok(f,
           "model m {\n  input x : f32[seq, 8]\n  s = split_heads(x, 2)\n"
           "  output o = merge_heads(attention(s, s, s))\n}\n",
           &o2);
    assert_int_equal(count_op(r->g, OP_SPLIT_HEADS), 1);
    assert_int_equal(count_op(r->g, OP_MERGE_HEADS), 1);
    /* an output is never folded away */
    r = ok(f, "model m {\n  input x : f32[seq, 8]\n  output o = merge_heads(split_heads(x, 4))\n}\n", &o2);
    assert_int_equal(output_named(r->g, "o")->op, OP_MERGE_HEADS);
}

static void test_fold_cse(void **state)
{
    Fx *f = *state;
    static const char spec[] =
        "model m {\n"
        "  input x : f32[seq, 8]\n"
        "  weight n : [8] = \"n\"\n"
        "  weight w : [8, 8] = \"w\"\n"
        "  a = rms_norm(x, n, 1e-5)\n"
        "  b = rms_norm(x, n, 1e-5)\n"
        "  c = rms_norm(x, n, 1e-6)\n"
        "  output o = linear(a, w) * linear(b, w) + c\n"
        "}\n";
    Opt o = {.stop_after = "infer"};
    Run *r = ok(f, spec, &o);
    assert_int_equal(count_op(r->g, OP_RMS_NORM), 3);
    assert_int_equal(count_op(r->g, OP_LINEAR), 2);
    Opt o2 = {.stop_after = "fold"};
    r = ok(f, spec, &o2);
    /* a and b become one; c (another eps) stays; so do the linears over them */
    assert_int_equal(count_op(r->g, OP_RMS_NORM), 2);
    assert_int_equal(count_op(r->g, OP_LINEAR), 1);
    Node *mul = first_op(r->g, OP_MUL);
    assert_ptr_equal(mul->src[0], mul->src[1]);

    /* attention is never merged: each call owns its KV cache */
    r = ok(f,
           "model m {\n  input x : f32[seq, 8]\n  s = split_heads(x, 2)\n"
           "  output o = merge_heads(attention(s, s, s)) + merge_heads(attention(s, s, s))\n}\n",
           &o2);
    assert_int_equal(count_op(r->g, OP_ATTENTION), 2);
    assert_int_equal(count_op(r->g, OP_MERGE_HEADS), 2);
    /* nor are leaves: two inputs of one shape stay two */
    r = ok(f, "model m {\n  input x : f32[seq, 8]\n  input z : f32[seq, 8]\n  output o = silu(x) + silu(z)\n}\n", &o2);
    assert_int_equal(count_op(r->g, OP_INPUT), 2);
    assert_int_equal(count_op(r->g, OP_SILU), 2);
    /* ropes with other attributes stay apart; equal ones merge */
    r = ok(f,
           "model m {\n  input x : f32[seq, 8]\n  s = split_heads(x, 2)\n"
           "  a = rope(s, theta: 100.0)\n  b = rope(s, theta: 200.0)\n  c = rope(s, theta: 100.0)\n"
           "  output o = merge_heads(a) + merge_heads(b) + merge_heads(c)\n}\n",
           &o2);
    assert_int_equal(count_op(r->g, OP_ROPE), 2);
}

static void test_fold_dead(void **state)
{
    Fx *f = *state;
    static const char spec[] =
        "model m {\n"
        "  input x : f32[seq, 8]\n"
        "  input unused : f32[seq, 4]\n"
        "  weight w : [8, 8] = \"w\"\n"
        "  weight spare : [8, 8] = \"spare\"\n"
        "  d = silu(linear(x, spare))\n"
        "  e = d * d\n"
        "  output o = linear(x, w)\n"
        "}\n";
    Opt o = {.stop_after = "fold"};
    Run *r = ok(f, spec, &o);
    Graph *g = r->g;
    assert_int_equal(count_op(g, OP_INPUT), 2);     /* inputs stay: the runtime feeds them */
    assert_null(weight_named(g, "spare"));
    assert_non_null(weight_named(g, "w"));
    assert_int_equal(count_op(g, OP_SILU), 0);
    assert_int_equal(count_op(g, OP_MUL), 0);
    assert_int_equal(count_op(g, OP_LINEAR), 1);
    assert_int_equal(g->n, 4);
    for (int i = 0; i < g->n; i++)
        assert_int_equal(g->nodes[i]->id, i);
}

/* ---- fuse -------------------------------------------------------------------------------- */

static const char *prog_text(Fx *f, const EwProg *p)
{
    static const char *const names[] = {"", "silu", "add", "sub", "mul"};
    char *s = arena_strdup(f->a, "");
    for (int i = 0; i < p->n; i++)
        s = p->code[i] == EW_LOAD ? arena_printf(f->a, "%s%s$%d", s, i ? " " : "", p->arg[i])
                                  : arena_printf(f->a, "%s%s%s", s, i ? " " : "", names[p->code[i]]);
    return s;
}

static void test_fuse_gated(void **state)
{
    Fx *f = *state;
    static const char spec[] =
        "model m {\n"
        "  input x : f32[seq, 8]\n"
        "  weight wg : [12, 8] = \"wg\"\n"
        "  weight wu : [12, 8] = \"wu\"\n"
        "  weight wd : [8, 12] = \"wd\"\n"
        "  output o = linear(silu(linear(x, wg)) * linear(x, wu), wd)\n"
        "}\n";
    Run *r = ok(f, spec, NULL);
    Graph *g = r->g;
    assert_int_equal(count_op(g, OP_SILU), 0);
    assert_int_equal(count_op(g, OP_MUL), 0);
    assert_int_equal(count_op(g, OP_FUSED), 1);
    Node *fu = first_op(g, OP_FUSED);
    assert_int_equal(fu->nsrc, 2);
    Node *gate = NULL, *up = NULL;
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i]->op == OP_LINEAR && g->nodes[i]->src[1] == weight_named(g, "wg"))
            gate = g->nodes[i];
        else if (g->nodes[i]->op == OP_LINEAR && g->nodes[i]->src[1] == weight_named(g, "wu"))
            up = g->nodes[i];
    /* silu(gate) * up over operands (up, gate): $1 silu $0 mul */
    assert_ptr_equal(fu->src[0], up);
    assert_ptr_equal(fu->src[1], gate);
    assert_string_equal(prog_text(f, &fu->a.ew), "$1 silu $0 mul");
    assert_string_equal(shape_of(f, fu), "f32[seq, 12]");
    assert_ptr_equal(output_named(g, "o")->src[0], fu);
}

static void test_fuse_not_absorbed(void **state)
{
    Fx *f = *state;
    /* s is read twice: it stays its own kernel */
    Run *r = ok(f,
                "model m {\n  input x : f32[seq, 8]\n  input z : f32[seq, 8]\n  s = silu(x)\n"
                "  output o = (s * z) + s\n}\n",
                NULL);
    Graph *g = r->g;
    assert_int_equal(count_op(g, OP_SILU), 1);
    Node *s = first_op(g, OP_SILU);
    Node *o = output_named(g, "o");
    assert_int_equal(o->op, OP_FUSED);
    assert_string_equal(prog_text(f, &o->a.ew), "$1 $2 mul $0 add");
    assert_ptr_equal(o->src[0], s);
    assert_ptr_equal(o->src[1], s);
    /* s * s: one node used twice by one reader is not absorbed either */
    r = ok(f, "model m {\n  input x : f32[seq, 8]\n  s = silu(x)\n  output o = s * s\n}\n", NULL);
    assert_int_equal(count_op(r->g, OP_SILU), 1);
    assert_int_equal(output_named(r->g, "o")->op, OP_MUL);
    /* an output is not absorbed into what reads it */
    r = ok(f,
           "model m {\n  input x : f32[seq, 8]\n  input z : f32[seq, 8]\n  output a = silu(x)\n"
           "  output b = a * z\n}\n",
           NULL);
    assert_int_equal(output_named(r->g, "a")->op, OP_SILU);
    assert_int_equal(output_named(r->g, "b")->op, OP_MUL);
    assert_ptr_equal(output_named(r->g, "b")->src[0], output_named(r->g, "a"));
    /* non-elementwise operands are never absorbed */
    r = ok(f, "model m {\n  input x : f32[seq, 8]\n  output o = silu(softmax(x))\n}\n", NULL);
    assert_int_equal(count_op(r->g, OP_SOFTMAX), 1);
    assert_int_equal(output_named(r->g, "o")->op, OP_SILU);
}

static void test_fuse_limits(void **state)
{
    Fx *f = *state;
    /* ((((a+b)+c)+d)+e): four operands fit one kernel, the fifth does not */
    Run *r = ok(f,
                "model m {\n  input a : f32[seq, 4]\n  input b : f32[seq, 4]\n  input c : f32[seq, 4]\n"
                "  input d : f32[seq, 4]\n  input e : f32[seq, 4]\n  output o = a + b + c + d + e\n}\n",
                NULL);
    Graph *g = r->g;
    Node *o = output_named(g, "o");
    assert_int_equal(o->op, OP_ADD);
    assert_int_equal(o->src[0]->op, OP_FUSED);
    assert_int_equal(o->src[0]->nsrc, IR_MAX_SRC);
    assert_string_equal(prog_text(f, &o->src[0]->a.ew), "$2 $3 add $1 add $0 add");
    assert_int_equal(count_op(g, OP_FUSED), 1);
    assert_int_equal(count_op(g, OP_ADD), 1);

    /* 20 silus: the program holds 16 instructions, then a new kernel starts */
    char *body = arena_strdup(f->a, "model m {\n  input x : f32[seq, 4]\n  y = x\n");
    for (int i = 0; i < 20; i++)
        body = arena_printf(f->a, "%s  y = silu(y)\n", body);
    body = arena_printf(f->a, "%s  output o = y\n}\n", body);
    r = ok(f, body, NULL);
    g = r->g;
    int silus = 0, fused = 0;
    for (int i = 0; i < g->n; i++) {
        Node *n = g->nodes[i];
        if (n->op == OP_SILU)
            silus++;
        if (n->op != OP_FUSED)
            continue;
        fused++;
        assert_true(n->a.ew.n <= IR_MAX_EW);
        for (int k = 0; k < n->a.ew.n; k++)
            silus += n->a.ew.code[k] == EW_SILU;
    }
    assert_int_equal(silus, 20);
    assert_int_equal(fused, 2);
    assert_int_equal(output_named(g, "o")->op, OP_FUSED);
    assert_int_equal(output_named(g, "o")->a.ew.n, 6);
    assert_int_equal(output_named(g, "o")->src[0]->a.ew.n, IR_MAX_EW);
}

/* Scalar interpretation of an elementwise graph: every leaf holds one number
 * (elementwise ops treat every element alike), so a fused graph must give its
 * outputs the values the unfused one does. */
static double leaf_value(const Node *n)
{
    unsigned h = 2166136261u;
    for (const char *p = n->weight; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return ((double)(h % 2000) - 1000.0) / 400.0;
}

static double silu(double x) { return x / (1 + exp(-x)); }

static void interpret(const Graph *g, double *val)
{
    for (int i = 0; i < g->n; i++) {
        const Node *n = g->nodes[i];
        if (ir_ops[n->op].flags & OPF_LEAF) {
            val[i] = leaf_value(n);
            continue;
        }
        EwProg p;
        ir_ew_program(n, &p);
        double st[IR_MAX_EW];
        int sp = 0;
        for (int k = 0; k < p.n; k++) {
            switch (p.code[k]) {
            case EW_LOAD: st[sp++] = val[n->src[p.arg[k]]->id]; break;
            case EW_SILU: st[sp - 1] = silu(st[sp - 1]); break;
            case EW_ADD: sp--; st[sp - 1] += st[sp]; break;
            case EW_SUB: sp--; st[sp - 1] -= st[sp]; break;
            case EW_MUL: sp--; st[sp - 1] *= st[sp]; break;
            }
        }
        assert_int_equal(sp, 1);
        val[i] = st[0];
    }
}

typedef struct Rng {
    uint64_t s;
} Rng;

static unsigned rnd(Rng *r, unsigned n)
{
    r->s = r->s * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)((r->s >> 33) % n);
}

static void test_fuse_property(void **state)
{
    Fx *f = *state;
    Rng rng = {12345};
    for (int iter = 0; iter < 200; iter++) {
        int nin = 1 + (int)rnd(&rng, 4), nt = 0;
        char *s = arena_strdup(f->a, "model m {\n");
        for (int i = 0; i < nin; i++)
            s = arena_printf(f->a, "%s  input i%d : f32[seq, 4]\n", s, i);
        const char *names[64];
        for (int i = 0; i < nin; i++)
            names[nt++] = arena_printf(f->a, "i%d", i);
        int nops = 1 + (int)rnd(&rng, 14);
        for (int k = 0; k < nops; k++) {
            const char *a = names[rnd(&rng, (unsigned)nt)], *b = names[rnd(&rng, (unsigned)nt)];
            const char *e;
            switch (rnd(&rng, 4)) {
            case 0: e = arena_printf(f->a, "silu(%s)", a); break;
            case 1: e = arena_printf(f->a, "%s + %s", a, b); break;
            case 2: e = arena_printf(f->a, "%s - %s", a, b); break;
            default: e = arena_printf(f->a, "%s * %s", a, b); break;
            }
            s = arena_printf(f->a, "%s  t%d = %s\n", s, k, e);
            names[nt++] = arena_printf(f->a, "t%d", k);
        }
        /* the last value and maybe one more are outputs */
        s = arena_printf(f->a, "%s  output o0 = %s\n", s, names[nt - 1]);
        int extra = nt - 1 > nin ? nin + (int)rnd(&rng, (unsigned)(nt - 1 - nin)) : -1;
        if (extra >= 0 && rnd(&rng, 2))
            s = arena_printf(f->a, "%s  output o1 = silu(%s)\n", s, names[extra]);
        s = arena_printf(f->a, "%s}\n", s);

        Opt before = {.stop_after = "fold"};
        Run *r0 = ok(f, s, &before);
        Run *r1 = ok(f, s, NULL);
        double *v0 = arena_alloc(f->a, (size_t)r0->g->n * sizeof *v0);
        double *v1 = arena_alloc(f->a, (size_t)r1->g->n * sizeof *v1);
        interpret(r0->g, v0);
        interpret(r1->g, v1);
        int nout = 0;
        for (int i = 0; i < r1->g->n; i++) {
            Node *n = r1->g->nodes[i];
            if (!n->output)
                continue;
            nout++;
            double want = v0[output_named(r0->g, n->output)->id], got = v1[i];
            if (fabs(want - got) > 1e-9 * (1 + fabs(want)))
                fail_msg("output %s: %g unfused, %g fused\nspec:\n%s\nfused IR:\n%s", n->output, want, got, s,
                         ir_text(f, r1->g));
        }
        assert_true(nout >= 1);
        /* within limits, and nothing left that could have been absorbed */
        ir_count_uses(r1->g);
        for (int i = 0; i < r1->g->n; i++) {
            Node *n = r1->g->nodes[i];
            if (!(ir_ops[n->op].flags & OPF_ELEMENTWISE))
                continue;
            assert_true(n->nsrc <= IR_MAX_SRC);
            EwProg outer;
            ir_ew_program(n, &outer);
            assert_true(outer.n <= IR_MAX_EW);
            for (int k = 0; k < n->nsrc; k++) {
                Node *p = n->src[k];
                if (!(ir_ops[p->op].flags & OPF_ELEMENTWISE) || p->nuses != 1 || p->output)
                    continue;
                EwProg inner;
                ir_ew_program(p, &inner);
                if (n->nsrc - 1 + p->nsrc <= IR_MAX_SRC && outer.n - 1 + inner.n <= IR_MAX_EW)
                    fail_msg("%%%d could have absorbed %%%d\nspec:\n%s\nIR:\n%s", n->id, p->id, s, ir_text(f, r1->g));
            }
        }
    }
}

/* ---- plan ---------------------------------------------------------------------------------- */

static const Node *base_of(const Node *n)
{
    while (ir_ops[n->op].flags & OPF_VIEW)
        n = n->src[0];
    return n;
}

/* The plan's promises, checked from the graph alone:
 *   - leaves have no slot; views have their base's; every other node a slot < nslots;
 *   - if a and b (a before b) share a slot, nothing from b on reads a (directly
 *     or through views), and a is no output (nor the base of one): b's kernel
 *     may overwrite a;
 *   - each slot's size covers every node in it. */
static void check_plan(Fx *f, const Graph *g, const char *what)
{
    int planned = 0;
    for (int i = 0; i < g->n; i++) {
        const Node *n = g->nodes[i];
        assert_int_equal(n->id, i);
        if (ir_ops[n->op].flags & OPF_LEAF) {
            assert_int_equal(n->buf, -1);
        } else if (ir_ops[n->op].flags & OPF_VIEW) {
            assert_int_equal(n->buf, base_of(n)->buf);
        } else {
            planned++;
            if (n->buf < 0 || n->buf >= g->nslots)
                fail_msg("%s: %%%d has slot %d of %d", what, i, n->buf, g->nslots);
            int64_t pt, c;
            assert_int_equal(ir_numel_per_tok(n, &pt, &c), 0);
            assert_true(pt * ir_dtype_size(n->dt) <= g->slot_per_tok[n->buf]);
            assert_true(c * ir_dtype_size(n->dt) <= g->slot_const[n->buf]);
        }
    }
    assert_true(g->nslots <= planned);
    /* live_end[a]: the last node that reads a's storage, g->n if an output keeps it */
    int *live_end = arena_alloc(f->a, (size_t)(g->n + 1) * sizeof *live_end);
    for (int i = 0; i < g->n; i++)
        live_end[i] = -1;
    for (int j = 0; j < g->n; j++) {
        const Node *n = g->nodes[j];
        for (int k = 0; k < n->nsrc; k++) {
            int b = base_of(n->src[k])->id;
            if (j > live_end[b])
                live_end[b] = j;
        }
        if (n->output)
            live_end[base_of(n)->id] = g->n;
    }
    for (int a = 0; a < g->n; a++) {
        const Node *na = g->nodes[a];
        if (na->buf < 0 || (ir_ops[na->op].flags & (OPF_LEAF | OPF_VIEW)))
            continue;
        for (int b = a + 1; b < g->n; b++) {
            const Node *nb = g->nodes[b];
            if (nb->buf != na->buf || (ir_ops[nb->op].flags & (OPF_LEAF | OPF_VIEW)))
                continue;
            if (live_end[a] >= b)
                fail_msg("%s: %%%d and %%%d share slot %d but %%%d is still read at %%%d\nIR:\n%s", what, a, b,
                         na->buf, a, live_end[a], ir_text(f, g));
        }
    }
}

static void test_plan_llama(void **state)
{
    Fx *f = *state;
    static const char *const cfgs[] = {
        "{\"vocab_size\": 64, \"hidden_size\": 32, \"num_hidden_layers\": 2, \"num_attention_heads\": 4,"
        " \"num_key_value_heads\": 2, \"intermediate_size\": 48}",
        "{\"vocab_size\": 50, \"hidden_size\": 24, \"num_hidden_layers\": 3, \"num_attention_heads\": 6,"
        " \"num_key_value_heads\": 3, \"head_dim\": 10, \"intermediate_size\": 40, \"tie_word_embeddings\": true,"
        " \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 4.0, \"original_max_position_embeddings\": 64}}",
        "{\"vocab_size\": 16, \"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 1,"
        " \"intermediate_size\": 8}",
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++) {
        Opt o = {.config = cfgs[i]};
        Run *r = compile_file(f, "models/llama.mdl", NULL, &o);
        if (!r->ok)
            fail_msg("%s", rendered(f, r));
        check_plan(f, r->g, "llama");
        /* reuse happens: far fewer slots than kernels */
        assert_true(r->g->nslots <= 6);
        /* the logits' slot holds [seq, vocab] f32 */
        Node *logits = output_named(r->g, "logits");
        assert_true(r->g->slot_per_tok[logits->buf] >= 4 * logits->shape[1]);
    }
    Run *r = compile_file(f, "models/mlp.mdl", NULL, NULL);
    assert_true(r->ok);
    check_plan(f, r->g, "mlp");
}

/* Random small specs: linears, norms, elementwise ops, heads (views) with and
 * without attention, softmax, outputs that are views, rebinding. */
static const char *random_spec(Fx *f, Rng *rng)
{
    static const int dims[] = {4, 6, 8, 12, 16};
    const char *name[80];
    int dim[80], nt = 0, nw = 0;
    char *s = arena_strdup(f->a, "model r {\n");
    int nin = 1 + (int)rnd(rng, 2);
    for (int i = 0; i < nin; i++) {
        int d = dims[rnd(rng, 5)];
        s = arena_printf(f->a, "%s  input in%d : f32[seq, %d]\n", s, i, d);
        name[nt] = arena_printf(f->a, "in%d", i);
        dim[nt++] = d;
    }
    if (rnd(rng, 2)) {
        int d = dims[rnd(rng, 5)];
        s = arena_printf(f->a, "%s  input tok : i32[seq]\n  weight emb : [10, %d] = \"emb\"\n  e = embedding(emb, tok)\n",
                         s, d);
        name[nt] = "e";
        dim[nt++] = d;
    }
    int nops = 2 + (int)rnd(rng, 25);
    for (int k = 0; k < nops && nt < 70; k++) {
        int a = nt - 1 - (int)rnd(rng, (unsigned)(nt < 4 ? nt : 4));   /* mostly recent values */
        if (rnd(rng, 4) == 0)
            a = (int)rnd(rng, (unsigned)nt);
        int d = dim[a], nd = d;
        const char *x = name[a], *e = NULL;
        switch (rnd(rng, 8)) {
        case 0: {
            nd = dims[rnd(rng, 5)];
            s = arena_printf(f->a, "%s  weight w%d : [%d, %d] = \"w%d\"\n", s, nw, nd, d, nw);
            e = arena_printf(f->a, "linear(%s, w%d)", x, nw++);
            break;
        }
        case 1: e = arena_printf(f->a, "silu(%s)", x); break;
        case 2: e = arena_printf(f->a, "softmax(%s)", x); break;
        case 3: {
            s = arena_printf(f->a, "%s  weight w%d : [%d] = \"w%d\"\n", s, nw, d, nw);
            e = arena_printf(f->a, "rms_norm(%s, w%d, 1e-5)", x, nw++);
            break;
        }
        case 4:
        case 5: {
            int b = -1;
            for (int t = 0; t < 8 && b < 0; t++) {
                int c = (int)rnd(rng, (unsigned)nt);
                if (dim[c] == d)
                    b = c;
            }
            if (b < 0)
                b = a;
            static const char ops[] = "+-*";
            e = arena_printf(f->a, "%s %c %s", x, ops[rnd(rng, 3)], name[b]);
            break;
        }
        default: {
            int h = d % 4 == 0 && rnd(rng, 2) ? d / 4 : d / 2;   /* head_dim 4 or 2: rope wants it even */
            const char *sh = arena_printf(f->a, "split_heads(%s, %d)", x, h);
            switch (rnd(rng, 4)) {
            case 0: e = arena_printf(f->a, "merge_heads(%s)", sh); break;
            case 1: e = arena_printf(f->a, "merge_heads(rope(%s))", sh); break;
            case 2: {
                s = arena_printf(f->a, "%s  v%d = %s\n", s, k, sh);
                e = arena_printf(f->a, "merge_heads(attention(rope(v%d), v%d, v%d, causal: %s))", k, k, k,
                                 rnd(rng, 2) ? "true" : "false");
                break;
            }
            default: e = arena_printf(f->a, "merge_heads(attention(%s, %s, %s))", sh, sh, sh); break;
            }
            break;
        }
        }
        /* sometimes rebind an old name instead of making a new one */
        if (rnd(rng, 6) == 0 && a >= nin && name[a][0] == 't' && dim[a] == nd) {
            s = arena_printf(f->a, "%s  %s = %s\n", s, name[a], e);
            name[nt] = name[a];
            dim[nt++] = nd;
        } else {
            s = arena_printf(f->a, "%s  t%d = %s\n", s, k, e);
            name[nt] = arena_printf(f->a, "t%d", k);
            dim[nt++] = nd;
        }
    }
    /* outputs: the last value, and up to two more, one maybe a view */
    s = arena_printf(f->a, "%s  output o0 = %s\n", s, name[nt - 1]);
    int extra = (int)rnd(rng, 3);
    for (int i = 1; i <= extra; i++) {
        int c = (int)rnd(rng, (unsigned)nt);
        if (dim[c] % 2 == 0 && rnd(rng, 2))
            s = arena_printf(f->a, "%s  output o%d = split_heads(silu(%s), 2)\n", s, i, name[c]);
        else if (rnd(rng, 2))
            s = arena_printf(f->a, "%s  output o%d = split_heads(%s, 1)\n", s, i, name[c]);
        else
            s = arena_printf(f->a, "%s  output o%d = silu(%s)\n", s, i, name[c]);
    }
    return arena_printf(f->a, "%s}\n", s);
}

static void test_plan_property(void **state)
{
    Fx *f = *state;
    Rng rng = {20240601};
    for (int iter = 0; iter < 300; iter++) {
        const char *spec = random_spec(f, &rng);
        Run *r = compile(f, spec, NULL);
        if (!r->ok)
            fail_msg("random spec %d did not compile:\n%s\n%s", iter, rendered(f, r), spec);
        check_plan(f, r->g, arena_printf(f->a, "random spec %d:\n%s", iter, spec));
    }
}

/* A plan that got it wrong is caught: the checker itself is tested. */
static void test_plan_checker_catches(void **state)
{
    Fx *f = *state;
    Run *r = ok(f,
                "model m {\n  input x : f32[seq, 8]\n  weight w : [8, 8] = \"w\"\n"
                "  a = linear(x, w)\n  b = linear(a, w)\n  output o = linear(b, w)\n}\n",
                NULL);
    Graph *g = r->g;
    /* a (slot s) is read by b, so they must differ; o may reuse a's */
    Node *a = g->nodes[2], *b = g->nodes[3], *o = g->nodes[4];
    assert_int_not_equal(a->buf, b->buf);
    assert_int_not_equal(b->buf, o->buf);
    assert_int_equal(o->buf, a->buf);
    check_plan(f, g, "chain");
    assert_int_equal(g->nslots, 2);
}

/* ---- dumps -------------------------------------------------------------------------------- */

static char *read_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    rewind(fp);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, fp);
    s[got] = 0;
    fclose(fp);
    return s;
}

static void test_print_after_golden(void **state)
{
    Fx *f = *state;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    Opt o = {.print_after = "fuse", .dump = m};
    Run *r = compile_file(f, "models/mlp.mdl", NULL, &o);
    fclose(m);
    assert_true(r->ok);
    const char *upd = getenv("MODELC_UPDATE_GOLDEN");
    if (upd && *upd && strcmp(upd, "0")) {
        mkdir("tests/passes/golden", 0755);
        FILE *out = fopen(GOLDEN_MLP, "wb");
        assert_non_null(out);
        fwrite(buf, 1, len, out);
        fclose(out);
        fprintf(stderr, "updated %s\n", GOLDEN_MLP);
    }
    char *want = read_file(GOLDEN_MLP);
    if (!want) {
        free(buf);
        fail_msg("cannot read %s (run from the repository root; MODELC_UPDATE_GOLDEN=1 writes it)", GOLDEN_MLP);
    }
    bool same = !strcmp(want, buf);
    if (!same)
        fprintf(stderr, "--- %s\n%s--- got\n%s", GOLDEN_MLP, want, buf);
    free(want);
    assert_true(strncmp(buf, "; IR after fuse\ngraph mlp {\n", 27) == 0);
    free(buf);
    assert_true(same);
}

static void test_print_after_all(void **state)
{
    Fx *f = *state;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    Opt o = {.print_after_all = true, .dump = m};
    Run *r = compile_file(f, "models/mlp.mdl", NULL, &o);
    fclose(m);
    assert_true(r->ok);
    const char *at = buf;
    for (int i = 0; i < pass_count; i++) {
        char head[64];
        snprintf(head, sizeof head, "; IR after %s\ngraph mlp {\n", pass_pipeline[i].name);
        const char *p = strstr(at, head);
        if (!p)
            fail_msg("no dump after %s in order", pass_pipeline[i].name);
        at = p + 1;
    }
    /* only plan's dump shows buffers, only fuse's and plan's show fused nodes */
    const char *plan = strstr(buf, "; IR after plan\n");
    const char *fuse = strstr(buf, "; IR after fuse\n");
    const char *buf0 = strstr(buf, "buf=0");
    const char *fused = strstr(buf, "fused(");
    assert_true(buf0 && buf0 > plan);
    assert_true(fused && fused > fuse);
    free(buf);

    /* stop_after ends the pipeline there: nothing planned */
    Opt o2 = {.stop_after = "fuse"};
    r = compile_file(f, "models/mlp.mdl", NULL, &o2);
    assert_true(r->ok);
    for (int i = 0; i < r->g->n; i++)
        assert_int_equal(r->g->nodes[i]->buf, -1);

    assert_true(pass_exists("lower") && pass_exists("infer") && pass_exists("fold") && pass_exists("fuse") &&
                pass_exists("epilogue") && pass_exists("quantize") && pass_exists("plan") && pass_exists("select"));
    assert_false(pass_exists("codegen"));
    assert_false(pass_exists(""));
    assert_int_equal(pass_count, 8);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_bind_kinds),
        T(test_bind_coalesce),
        T(test_bind_defaults),
        T(test_missing_key),
        T(test_set_overrides),
        T(test_no_config),
        T(test_unknown_condition),
        T(test_plan_too_large),
        T(test_expansion_capped),
        T(test_iterations_capped),
        T(test_two_outputs_one_value),
        T(test_repeat_expansion),
        T(test_tied_weights),
        T(test_weights_from_checkpoint),
        T(test_shape_errors),
        T(test_fold_reshapes),
        T(test_fold_cse),
        T(test_fold_dead),
        T(test_fuse_gated),
        T(test_fuse_not_absorbed),
        T(test_fuse_limits),
        T(test_fuse_property),
        T(test_plan_llama),
        T(test_plan_property),
        T(test_plan_checker_catches),
        T(test_print_after_golden),
        T(test_print_after_all),
    };
    return cmocka_run_group_tests_name("passes", tests, NULL, NULL);
}
