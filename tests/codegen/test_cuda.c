/* tests/codegen/test_cuda.c — the CUDA backend without a GPU.
 *
 * models/llama.mdl is compiled for the CUDA target from config.json text of
 * several shapes (tiny, the SmolLM2-135M, Llama-3.2-1B and Llama-3.1-8B
 * shapes, head_dim 48) and weight dtypes (f16, bf16, f32), and:
 *   - pass "select" gives every linear variants that cover each step size
 *     exactly once (GEMV for T <= 4; tensor cores for f16/bf16 beyond);
 *   - the program runs exactly one variant of each node for every T, marks
 *     as tails only per-row launches after the last attention, and names
 *     only kernels the source defines, each with its IR node comment;
 *   - NVRTC compiles the whole translation unit for sm_80 and sm_90, and the
 *     cubin holds every kernel a launch names.
 * Running the kernels needs the GPU machine: bench/gpu_cuda.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codegen/cuda/cuda.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "runtime/internal.h"
#include "tests/test_util.h"

typedef struct Shape {
    const char *name, *config;
} Shape;

static const Shape shapes[] = {
    {"tiny", "{\"vocab_size\": 512, \"hidden_size\": 128, \"intermediate_size\": 344, \"num_hidden_layers\": 2,"
             " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"rope_theta\": 10000.0}"},
    {"smollm2-135m", "{\"vocab_size\": 49152, \"hidden_size\": 576, \"intermediate_size\": 1536, \"num_hidden_layers\": 30,"
                     " \"num_attention_heads\": 9, \"num_key_value_heads\": 3, \"rope_theta\": 100000.0,"
                     " \"tie_word_embeddings\": true, \"rms_norm_eps\": 1e-5}"},
    {"llama-1b", "{\"vocab_size\": 128256, \"hidden_size\": 2048, \"intermediate_size\": 8192, \"num_hidden_layers\": 16,"
                 " \"num_attention_heads\": 32, \"num_key_value_heads\": 8, \"rope_theta\": 500000.0,"
                 " \"tie_word_embeddings\": true, \"rms_norm_eps\": 1e-5, \"rope_scaling\": {\"rope_type\": \"llama3\","
                 " \"factor\": 32.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0,"
                 " \"original_max_position_embeddings\": 8192}}"},
    {"llama-8b", "{\"vocab_size\": 128256, \"hidden_size\": 4096, \"intermediate_size\": 14336, \"num_hidden_layers\": 32,"
                 " \"num_attention_heads\": 32, \"num_key_value_heads\": 8, \"rope_theta\": 500000.0, \"rms_norm_eps\": 1e-5}"},
    {"hd48", "{\"vocab_size\": 300, \"hidden_size\": 96, \"intermediate_size\": 200, \"num_hidden_layers\": 2,"
             " \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"head_dim\": 48}"},
};

static bool with_timeline;   /* build(): CudaOptions.timeline */

typedef struct Build {
    Arena *arena;
    Diags diags;
    RtConfig *cfg;
    CompileEnv env;
    Compilation comp;
    CudaModule *m;
} Build;

static void fail_with_diags(Build *b, const char *what)
{
    fail_msg("%s failed:\n%s", what, test_diag_text(&b->diags));
}

/* models/llama.mdl, or the spec `text` when given */
static void build_spec(Build *b, const Shape *s, DType dt, int sm, const char *text)
{
    memset(b, 0, sizeof *b);
    b->arena = arena_new();
    diag_init(&b->diags, b->arena);
    RtErr err;
    if (!rt_config_parse("config.json", s->config, strlen(s->config), &b->cfg, &err))
        fail_msg("config %s: %s", s->name, err.msg);
    Module *m = text ? fe_parse_string("edited.mdl", text, strlen(text), b->arena, &b->diags)
                     : fe_parse_file("models/llama.mdl", b->arena, &b->diags);
    if (!m || !fe_check(m, &b->diags))
        fail_with_diags(b, "parsing models/llama.mdl");
    b->env = (CompileEnv){.config = b->cfg, .config_path = "config.json", .default_weight_dt = dt,
                          .target = RT_TARGET_CUDA, .sm = sm, .sms = 132};
    b->comp = (Compilation){.arena = b->arena, .diags = &b->diags, .module = m, .env = &b->env};
    PassOptions po = {0};
    if (!pass_run_pipeline(&b->comp, &po))
        fail_with_diags(b, "pass_run_pipeline");
    CudaOptions co = {.sm = sm, .cache_dir = "", .timeline = with_timeline};
    if (!cuda_codegen(&b->comp, &co, &b->m))
        fail_with_diags(b, "cuda_codegen");
}

static void build(Build *b, const Shape *s, DType dt, int sm)
{
    build_spec(b, s, dt, sm, NULL);
}

static void build_free(Build *b)
{
    cuda_module_free(b->m);
    rt_config_free(b->cfg);
    arena_free(b->arena);
}

static bool runs_at(const RtLaunch *l, int64_t T)
{
    return T >= l->min_T && (!l->max_T || T <= l->max_T);
}

/* ---- targets ----------------------------------------------------------------- */

static void test_parse_target(void **state)
{
    (void)state;
    int sm = -1;
    assert_true(cuda_parse_target("cuda", &sm));
    assert_int_equal(sm, 0);
    assert_true(cuda_parse_target("cuda:sm_90", &sm));
    assert_int_equal(sm, 90);
    assert_true(cuda_parse_target("cuda:sm_90a", &sm));
    assert_int_equal(sm, 90);
    assert_true(cuda_parse_target("cuda:sm_80", &sm));
    assert_int_equal(sm, 80);
    assert_false(cuda_parse_target("cuda:sm_75", &sm));
    assert_false(cuda_parse_target("cuda:sm_", &sm));
    assert_false(cuda_parse_target("cuda:sm_9x", &sm));
    assert_false(cuda_parse_target("cpu", &sm));
    assert_false(cuda_parse_target("cuda:90", &sm));
}

/* ---- pass select --------------------------------------------------------------- */

/* A GEMV's loads: 8 in flight per lane for one row per warp, else 2-4
 * (__launch_bounds__ keeps that many blocks per SM); rows prefetched to L2 in
 * lines of 128 bytes, whole rows (up to 128 lines) where the launch is small,
 * but not the whole of 8B's gate+up rows (67 MB for the blocks an SM holds
 * at once: more than the L2). */
static void check_gemv_loads(const Build *b, const Node *n, const KernelChoice *k)
{
    if (!k->p[1])
        return;
    int nw = n->op == OP_LINEAR_EW ? n->a.lew.nw : 1, batch = k->p[3], pf = k->p[4];
    if (k->p[0] * nw == 1)
        assert_int_equal(batch, 8);
    else
        assert_true(batch >= 2 && batch <= 4);
    int64_t esz = n->src[1]->dt == DT_F32 ? 4 : 2, lines = (n->src[1]->shape[1] * esz + 127) / 128;
    int64_t whole = lines < 128 ? lines : 128;
    assert_true(pf >= 1 && pf <= whole);
    int64_t rows = 0;
    const Node *parts[IR_MAX_GROUP];
    for (int i = n->op == OP_LINEAR_EW ? 0 : ir_group(b->comp.graph, n, parts); i-- > 0;)
        rows += parts[i]->src[1]->shape[0];
    if (n->op == OP_LINEAR_EW)
        rows = n->src[1]->shape[0] * nw;
    if (rows * whole * 128 <= (4 << 20))   /* all of it fits many times over */
        assert_int_equal(pf, whole);
    if (n->op == OP_LINEAR_EW && nw == 2 && n->src[1]->shape[0] == 14336)   /* 8B gate+up */
        assert_true(pf < whole);
}

/* Split-K: 1, 2, 4 or 8 ways, only below T = 512, each block 8+ steps of 32
 * columns, the launch at its fewest M tiles at most one block per SM (132);
 * and every tile count the counters allow.  The Llama-3.2-1B shape's o_proj
 * and down (16 N tiles) split 8 ways for short prompts. */
static void check_ksplit(const Build *b, const Node *n)
{
    int64_t K = n->src[1]->shape[1], N = n->src[1]->shape[0], ntiles;
    if (n->op == OP_LINEAR_EW) {
        ntiles = (N + 128 / n->a.lew.nw - 1) / (128 / n->a.lew.nw);
    } else {
        const Node *parts[IR_MAX_GROUP];
        ntiles = 0;
        for (int i = ir_group(b->comp.graph, n, parts); i-- > 0;)
            ntiles += (parts[i]->src[1]->shape[0] + 127) / 128;
    }
    for (int c = 1; c < n->nchoice; c++) {
        const KernelChoice *k = &n->choice[c];
        int ks = ir_mma_ksplit(k), BM = k->p[0];
        assert_true(ks == 1 || ks == 2 || ks == 4 || ks == 8);
        if (ks == 1)
            continue;
        assert_true(k->max_T > 0 && k->max_T < 512);
        assert_true((K + 31) / 32 / ks >= 8);
        assert_true(ntiles * ((k->min_T + BM - 1) / BM) * ks <= 132);
        assert_true(ntiles * ((k->max_T + BM - 1) / BM) <= IR_KSPLIT_MAX_TILES);
        assert_non_null(strstr(k->why, "K split"));
    }
    if (n->op == OP_LINEAR_EW && n->a.lew.nw == 1 && N == 2048 && K >= 2048)   /* 1B: o_proj, down */
        assert_int_equal(ir_mma_ksplit(&n->choice[1]), 8);
}

static void check_select(const Shape *s, DType dt)
{
    Build b;
    build(&b, s, dt, 90);
    int linears = 0, attns = 0, norms = 0;
    for (int i = 0; i < b.comp.graph->n; i++) {
        const Node *n = b.comp.graph->nodes[i];
        bool lin = (n->op == OP_LINEAR && !n->lead) || n->op == OP_LINEAR_EW;
        if (n->op == OP_RMS_NORM && n->nchoice) {   /* folded into the one GEMV launch that reads it */
            norms++;
            assert_int_equal(n->choice[0].family, KF_NORM_IN_GEMV);
            assert_int_equal(n->choice[0].min_T, 1);
            /* its own kernel where the reader runs on tensor cores (f16/bf16), none with f32 weights */
            assert_int_equal(n->choice[n->nchoice - 1].family, dt == DT_F32 ? KF_NORM_IN_GEMV : KF_NORM_ROWS);
            /* the GEMV that normalizes its rows keeps each row on one warp: every block pays for the norm,
               so no more blocks than one row per warp gives */
            int readers = 0;
            for (int j = i + 1; j < b.comp.graph->n; j++) {
                const Node *m = b.comp.graph->nodes[j];
                if (m->nsrc && m->src[0] == n && !m->lead) {
                    readers++;
                    assert_int_equal(m->choice[0].family, KF_GEMV);
                    assert_true(ir_gemv_warps_per_row(&m->choice[0]) == 1);
                }
            }
            assert_int_equal(readers, 1);
            continue;
        }
        if (!lin && n->op != OP_ATTENTION) {
            assert_int_equal(n->nchoice, 0);   /* grouped linears too: their lead's launch computes them */
            continue;
        }
        linears += lin;
        attns += n->op == OP_ATTENTION;
        assert_true(n->nchoice >= 2);
        /* contiguous from T = 1, the last one unbounded */
        int64_t next = 1;
        for (int c = 0; c < n->nchoice; c++) {
            const KernelChoice *k = &n->choice[c];
            assert_int_equal(k->min_T, next);
            assert_non_null(k->why);
            if (c + 1 < n->nchoice) {
                assert_true(k->max_T >= k->min_T);
                next = k->max_T + 1;
            } else {
                assert_int_equal(k->max_T, 0);
            }
        }
        if (lin) {
            assert_int_equal(n->choice[0].family, KF_GEMV);
            assert_int_equal(n->choice[0].max_T, 4);
            /* rows split over 2 or 4 warps: one row per warp, one product, 16-byte loads, 2+ chunks of
               256 columns for each warp */
            check_gemv_loads(&b, n, &n->choice[0]);
            int split = n->choice[0].p[2];
            assert_true(split == 0 || split == 1 || split == 2 || split == 4);
            if (split > 1) {
                assert_int_equal(n->choice[0].p[0], 1);
                assert_int_equal(n->choice[0].p[1], 1);
                assert_true(n->op == OP_LINEAR || n->a.lew.nw == 1);
                assert_true(n->src[1]->shape[1] >= 512 * split);
            }
            bool tc = dt != DT_F32 && n->src[1]->shape[1] % 8 == 0;
            assert_int_equal(n->choice[1].family, tc ? KF_MMA : KF_GEMV);
            if (tc) {
                assert_int_equal(n->choice[1].p[0], 32);   /* flat GEMM tile for small M */
                assert_int_equal(n->choice[1].p[4], 1);    /* activations as hi + lo */
                check_ksplit(&b, n);
                /* from T = 512: f16 as one term in 128 x 256 tiles (on sm_90 by wgmma: two warpgroups,
                   steps of 64, four weight stages), bf16 hi + lo in 128 x 128 */
                const KernelChoice *last = &n->choice[n->nchoice - 1];
                assert_int_equal(last->min_T, 512);
                assert_int_equal(last->p[0], 128);
                assert_int_equal(last->p[1], dt == DT_F16 ? 256 : 128);
                if (dt == DT_F16) {
                    assert_int_equal(last->family, KF_WGMMA);
                    assert_true(last->p[2] == 64 && last->p[3] == 2 && last->p[4] == 4);
                } else {
                    assert_int_equal(last->family, KF_MMA);
                    assert_int_equal(last->p[4], 1);
                }
            }
        } else {
            assert_int_equal(n->choice[0].family, KF_ATTN_SPLIT);
            assert_int_equal(n->choice[1].family, KF_ATTN_ROWS);
            if (n->src[0]->shape[2] % 16 == 0) {   /* tensor cores from T = 64; f16 out from 512 for wgmma GEMMs */
                assert_true(n->nchoice >= 3 && n->choice[2].family == KF_ATTN_MMA && n->choice[2].min_T == 64);
                assert_false(n->choice[2].y_f16);
                if (n->nchoice == 4)
                    assert_true(n->choice[3].family == KF_ATTN_MMA && n->choice[3].min_T == 512 && n->choice[3].y_f16);
                else
                    assert_int_equal(n->nchoice, 3);
                assert_int_equal(n->nchoice == 4, dt == DT_F16);
            }
        }
    }
    assert_true(linears > 0 && attns > 0);
    assert_true(norms >= 2 * attns);   /* both norms of every block */
    build_free(&b);
}

static void test_select(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        check_select(&shapes[i], DT_F16);
        check_select(&shapes[i], DT_BF16);
        check_select(&shapes[i], DT_F32);
    }
}

/* MODELC_GEMV_PREFETCH_KB, the decode GEMVs' L2 budget for tuning runs: 0 turns the prefetch off
 * (select says "prefetch=none", the kernels prefetch no line), a smaller budget never prefetches
 * more than the default, and a malformed value keeps the default. */
static int gemv_prefetch_lines(const Build *b, int64_t *sum, int *none)
{
    int gemvs = 0;
    *sum = 0;
    *none = 0;
    for (int i = 0; i < b->comp.graph->n; i++) {
        const Node *n = b->comp.graph->nodes[i];
        if (n->nchoice && n->choice[0].family == KF_GEMV && n->choice[0].p[1]) {
            gemvs++;
            *sum += n->choice[0].p[4] > 0 ? n->choice[0].p[4] : 0;
            *none += n->choice[0].p[4] < 0;
        }
    }
    return gemvs;
}

static void test_gemv_prefetch_knob(void **state)
{
    (void)state;
    const char *vals[] = {NULL, "0", "1024", "bogus", "-5"};
    int64_t sums[5];
    for (int v = 0; v < 5; v++) {
        if (vals[v])
            setenv("MODELC_GEMV_PREFETCH_KB", vals[v], 1);
        else
            unsetenv("MODELC_GEMV_PREFETCH_KB");
        Build b;
        build(&b, &shapes[2], DT_F16, 90);
        int none, gemvs = gemv_prefetch_lines(&b, &sums[v], &none);
        assert_true(gemvs > 0);
        const char *src = cuda_source(b.m);
        if (v == 1) {   /* none: every GEMV's PF is 0 */
            assert_int_equal(none, gemvs);
            assert_int_equal(sums[v], 0);
            int pf = 0, pf0 = 0;
            for (const char *at = src; (at = strstr(at, "PF = ")); at++)
                pf++;
            for (const char *at = src; (at = strstr(at, "PF = 0 }")); at++)
                pf0++;
            assert_true(pf > 0);
            assert_int_equal(pf0, pf);
        } else if (v != 2) {   /* 1 MB leaves less than a line a row for the largest launches: none there */
            assert_int_equal(none, 0);
            assert_null(strstr(src, "PF = 0 }"));
        }
        build_free(&b);
    }
    unsetenv("MODELC_GEMV_PREFETCH_KB");
    assert_true(sums[2] > 0 && sums[2] < sums[0]);   /* 1 MB: fewer lines than 8 MB, but some */
    assert_int_equal(sums[3], sums[0]);              /* malformed: the default */
    assert_int_equal(sums[4], sums[0]);
}

/* Decode attention takes the weights of the MLP's gate+up launch of its
 * layer (the second linear launch after it) and pulls the first 8 MB of
 * them, half from each, into L2; MODELC_ATTN_PREFETCH_KB sets how much (0:
 * none, the kernel without those arguments; malformed: the default). */
static void test_attn_prefetch_knob(void **state)
{
    (void)state;
    const char *vals[] = {"16384", NULL, "0", "bogus", "-5", "4"};
    for (int v = 0; v < 6; v++) {
        if (vals[v])
            setenv("MODELC_ATTN_PREFETCH_KB", vals[v], 1);
        else
            unsetenv("MODELC_ATTN_PREFETCH_KB");
        int kb = v == 0 ? 16384 : v == 5 ? 4 : v == 2 ? 0 : 8192;
        Build b;
        build(&b, &shapes[2], DT_F16, 90);
        const RtProgram *p = cuda_program(b.m);
        const char *src = cuda_source(b.m);
        int splits = 0;
        for (int l = 0; l < p->nlaunch; l++) {
            const RtLaunch *L = &p->launch[l];
            if (!strstr(L->kernel, "_split"))
                continue;
            splits++;
            assert_int_equal(L->nargs, kb ? 9 : 7);
            if (!kb)
                continue;
            int layer = -1;
            for (int a = 7; a < 9; a++) {   /* up, then gate, of this launch's layer */
                const RtBuf *w = &p->bufs[L->args[a]];
                assert_int_equal(w->kind, RB_WEIGHT);
                int ly;
                char which[16];
                assert_int_equal(sscanf(w->name, "model.layers.%d.mlp.%15[a-z]_proj.weight", &ly, which), 2);
                assert_string_equal(which, a == 7 ? "up" : "gate");
                if (layer < 0)
                    layer = ly;
                assert_int_equal(ly, layer);
            }
            assert_int_equal(layer, splits - 1);
        }
        assert_int_equal(splits, 16);
        char loop[64];
        snprintf(loop, sizeof loop, "c < %du; c += nb) prefetch_l2(P1", kb * 1024 / 2 / 128);
        if (kb)
            assert_non_null(strstr(src, loop));
        else
            assert_null(strstr(src, "prefetch_l2(P0"));
        if (v == 0 && !getenv("MODELC_NO_NVRTC") && !cuda_compile(b.m, &b.diags))
            fail_with_diags(&b, "cuda_compile");
        build_free(&b);
    }
    unsetenv("MODELC_ATTN_PREFETCH_KB");
}

/* ---- pass epilogue ------------------------------------------------------------- */

/* Per Llama block: q, k and v in one launch (k and v led by q); o_proj and
 * down absorb their residual adds; gate and up one linear_ew with silu * mul.
 * Nothing elementwise is left but the final norm's inputs. */
static void check_epilogue(const Shape *s, DType dt)
{
    Build b;
    build(&b, s, dt, 90);
    const Graph *g = b.comp.graph;
    int layers = 0, led = 0, res = 0, gated = 0, elementwise = 0;
    for (int i = 0; i < g->n; i++) {
        const Node *n = g->nodes[i];
        if (n->op == OP_ATTENTION)
            layers++;
        if (n->op == OP_LINEAR && n->lead) {
            led++;
            assert_ptr_equal(n->lead->src[0], n->src[0]);
            assert_null(n->lead->lead);
        }
        if (ir_ops[n->op].flags & OPF_ELEMENTWISE)
            elementwise++;
        if (n->op != OP_LINEAR_EW)
            continue;
        const EwProg *p = &n->a.lew.ew;
        if (n->a.lew.nw == 1) {   /* x W^T + residual */
            res++;
            assert_int_equal(n->nsrc, 3);
            assert_int_equal(p->n, 3);
            assert_int_equal(p->code[2], EW_ADD);
        } else {                  /* silu(x Wg^T) * x Wu^T */
            gated++;
            assert_int_equal(n->a.lew.nw, 2);
            assert_int_equal(n->nsrc, 3);
            assert_int_equal(n->src[1]->shape[0], n->src[2]->shape[0]);
            assert_int_equal(p->n, 4);
        }
    }
    assert_true(layers > 0);
    assert_int_equal(led, 2 * layers);
    assert_int_equal(res, 2 * layers);
    assert_int_equal(gated, layers);
    assert_int_equal(elementwise, 0);
    build_free(&b);
}

/* Decode attention loads each warp's first cached keys and values before its wait
 * only where they fit its registers: head_dim up to 64 (hd48, Llama-3.2-1B), not
 * 128 (Llama-3.1-8B, where they spill); MODELC_NO_EARLY_KV=1 turns them off for all. */
static void test_attn_early_kv(void **state)
{
    (void)state;
    const int which[] = {2, 3, 4};   /* head_dim 64, 128, 48 */
    for (int off = 0; off < 2; off++) {
        if (off)
            setenv("MODELC_NO_EARLY_KV", "1", 1);
        else
            unsetenv("MODELC_NO_EARLY_KV");
        for (int w = 0; w < 3; w++) {
            Build b;
            build(&b, &shapes[which[w]], DT_F16, 90);
            bool early = !off && which[w] != 3;
            int attns = 0;
            for (int i = 0; i < b.comp.graph->n; i++) {
                const Node *n = b.comp.graph->nodes[i];
                if (n->op != OP_ATTENTION)
                    continue;
                attns++;
                assert_int_equal(n->choice[0].family, KF_ATTN_SPLIT);
                assert_int_equal(n->choice[0].p[3], early);
                assert_int_equal(strstr(n->choice[0].why, "before waiting") != NULL, early);
                assert_int_equal(strstr(n->choice[0].why, "they spill") != NULL, which[w] == 3);
            }
            assert_true(attns > 0);
            const char *src = cuda_source(b.m);
            assert_non_null(strstr(src, early ? "KB = 8, EKV = 1 }" : "KB = 8, EKV = 0 }"));
            assert_null(strstr(src, early ? "KB = 8, EKV = 0 }" : "KB = 8, EKV = 1 }"));
            build_free(&b);
        }
    }
    unsetenv("MODELC_NO_EARLY_KV");
}

static void test_epilogue(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        check_epilogue(&shapes[i], DT_F16);
        check_epilogue(&shapes[i], DT_BF16);
    }
}

static void test_select_cpu_is_untouched(void **state)
{
    (void)state;
    Build b;
    memset(&b, 0, sizeof b);
    b.arena = arena_new();
    diag_init(&b.diags, b.arena);
    RtErr err;
    assert_true(rt_config_parse("config.json", shapes[0].config, strlen(shapes[0].config), &b.cfg, &err));
    Module *m = fe_parse_file("models/llama.mdl", b.arena, &b.diags);
    assert_non_null(m);
    assert_true(fe_check(m, &b.diags));
    b.env = (CompileEnv){.config = b.cfg, .target = RT_TARGET_CPU};
    b.comp = (Compilation){.arena = b.arena, .diags = &b.diags, .module = m, .env = &b.env};
    PassOptions po = {0};
    assert_true(pass_run_pipeline(&b.comp, &po));
    for (int i = 0; i < b.comp.graph->n; i++) {
        assert_int_equal(b.comp.graph->nodes[i]->nchoice, 0);
        assert_int_not_equal(b.comp.graph->nodes[i]->op, OP_LINEAR_EW);   /* pass epilogue is CUDA's alone */
        assert_null(b.comp.graph->nodes[i]->lead);
    }
    build_free(&b);
}

/* ---- program tables and source ---------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* Launches that write their output as f16 (select: y_f16): a norm's "_h", the
 * prefill attention's "_fa_h", a wgmma GEMM's "...y" or "...xy"; that read their x as
 * f16: a wgmma GEMM's "...x" or "...xy". */
static bool writes_f16(const RtLaunch *L)
{
    return ends_with(L->kernel, "_h") || strstr(L->kernel, "_fa_h") || ends_with(L->kernel, "_wgmma128xy") ||
           ends_with(L->kernel, "_wgmma128y");
}

static bool reads_f16(const RtLaunch *L)
{
    return ends_with(L->kernel, "_wgmma128x") || ends_with(L->kernel, "_wgmma128xy");
}

/* At T = 2048 every buffer a launch reads as f16 was last written as f16,
 * and every f16 output is next read by such a launch, as its x (argument 0)
 * and by nothing else; at T < 512 no launch that runs reads or writes f16.
 * `expect`: f16 activations on this program at all (the llama shapes in f16
 * on sm_90 have 4 per block). */
static void check_half_activations(const Shape *s, const RtProgram *p, bool expect)
{
    int writers = 0, readers = 0;
    for (int l = 0; l < p->nlaunch; l++) {
        const RtLaunch *L = &p->launch[l];
        if (writes_f16(L) || reads_f16(L)) {
            assert_true(L->min_T == 512 && L->max_T == 0);
            assert_true(expect);
        }
        if (!runs_at(L, 2048))
            continue;
        if (reads_f16(L)) {
            readers++;
            int x = L->args[0], w = -1;
            for (int k = l - 1; k >= 0 && w < 0; k--)
                if (runs_at(&p->launch[k], 2048) && p->launch[k].args[p->launch[k].nargs - 1] == x)
                    w = k;
            if (w < 0 || !writes_f16(&p->launch[w]))
                fail_msg("%s: %s reads buffer %d as f16, last written by %s", s->name, L->kernel, x,
                         w < 0 ? "nothing" : p->launch[w].kernel);
        }
        if (writes_f16(L)) {
            writers++;
            int y = L->args[L->nargs - 1], r = -1;
            for (int k = l + 1; k < p->nlaunch && r < 0; k++)
                if (runs_at(&p->launch[k], 2048))
                    for (int a = 0; a < p->launch[k].nargs; a++)
                        if (p->launch[k].args[a] == y)
                            r = k;
            if (r < 0 || !reads_f16(&p->launch[r]) || p->launch[r].args[0] != y)
                fail_msg("%s: %s writes buffer %d as f16, next read by %s", s->name, L->kernel, y,
                         r < 0 ? "nothing" : p->launch[r].kernel);
            for (int a = 1; a < p->launch[r].nargs; a++)
                assert_int_not_equal(p->launch[r].args[a], y);
        }
    }
    if (expect && strstr(s->name, "llama"))
        assert_true(writers >= 4 * 2 && readers >= writers);
}

static void check_program(const Shape *s, DType dt, int sm)
{
    Build b;
    build(&b, s, dt, sm);
    const RtProgram *p = cuda_program(b.m);
    const char *src = cuda_source(b.m);
    assert_int_equal(p->target, RT_TARGET_CUDA);
    assert_int_equal(p->sm, sm);
    assert_true(p->nlaunch > 0);
    int last_attn = -1;
    for (int l = 0; l < p->nlaunch; l++)
        if (strstr(p->launch[l].what, "attention("))
            last_attn = l;
    assert_true(last_attn >= 0);
    const int64_t Ts[] = {1, 2, 4, 5, 31, 32, 33, 64, 65, 128, 2048};
    for (size_t ti = 0; ti < sizeof Ts / sizeof *Ts; ti++) {
        /* every linear node runs exactly one variant */
        for (int l = 0; l < p->nlaunch; l++) {
            if (!strstr(p->launch[l].what, "linear("))
                continue;
            if (l > 0 && !strcmp(p->launch[l - 1].what, p->launch[l].what))
                continue;   /* count from the node's first variant */
            int active = 0;
            for (int k = l; k < p->nlaunch && !strcmp(p->launch[k].what, p->launch[l].what); k++)
                active += runs_at(&p->launch[k], Ts[ti]);
            if (active != 1)
                fail_msg("%s T=%lld: %d variants of %s run", s->name, (long long)Ts[ti], active, p->launch[l].what);
        }
    }
    /* each attention at every T: the keys stored once (by the decode kernel itself up to T = 4, so
       decode runs one launch per attention) and one attention kernel */
    for (size_t ti = 0; ti < sizeof Ts / sizeof *Ts; ti++)
        for (int l = 0; l < p->nlaunch; l++) {
            if (!strstr(p->launch[l].what, "attention(") || (l > 0 && !strcmp(p->launch[l - 1].what, p->launch[l].what)))
                continue;
            int stores = 0, kernels = 0, launches = 0;
            for (int k = l; k < p->nlaunch && !strcmp(p->launch[k].what, p->launch[l].what); k++) {
                bool runs = runs_at(&p->launch[k], Ts[ti]), split = strstr(p->launch[k].kernel, "_split") != NULL;
                stores += runs && (split || strstr(p->launch[k].kernel, "_kv_store"));
                kernels += runs && !strstr(p->launch[k].kernel, "_kv_store");
                launches += runs;
            }
            if (stores != 1 || kernels != 1 || (Ts[ti] <= 4 && launches != 1))
                fail_msg("%s T=%lld: %s stores keys %d times and runs %d kernels in %d launches", s->name,
                         (long long)Ts[ti], p->launch[l].what, stores, kernels, launches);
        }
    for (int l = 0; l < p->nlaunch; l++) {
        const RtLaunch *L = &p->launch[l];
        if (L->tail)
            assert_true(l > last_attn);
        assert_true(L->block > 0 && L->block <= 1024 && L->block % 32 == 0);
        assert_true(L->nargs >= 1 && L->nargs <= RT_MAX_ARGS);
        for (int a = 0; a < L->nargs; a++)
            assert_true(L->args[a] >= 0 && L->args[a] < p->nbufs);
        for (int d = 0; d < 3; d++)
            assert_true(L->grid[d] >= 1);
        char def[300];
        snprintf(def, sizeof def, ") %s(const RtGpuStep *st", L->kernel);
        const char *at = strstr(src, def);
        if (!at)
            fail_msg("%s: kernel %s is not defined in the source", s->name, L->kernel);
        assert_null(strstr(at + 1, def));   /* defined once */
    }
    /* K-split GEMMs (grid z) pass the scratch buffer last, sized for the counters and each tile's
       partial sums at the launch's largest T; the 1B and 8B shapes have some */
    int ksplits = 0;
    for (int l = 0; l < p->nlaunch; l++) {
        const RtLaunch *L = &p->launch[l];
        if (L->grid[2] == 1 || strstr(L->kernel, "_split"))
            continue;
        ksplits++;
        assert_non_null(strstr(L->kernel, "_mma"));
        assert_true(L->max_T > 0 && L->max_T < 512);
        const RtBuf *sb = &p->bufs[L->args[L->nargs - 1]];
        assert_int_equal(sb->kind, RB_SCRATCH);
        int64_t tiles = (int64_t)L->grid[0] * ((L->max_T + L->grid_tok[1] - 1) / L->grid_tok[1]);
        assert_true(sb->bytes_const >= (IR_KSPLIT_MAX_TILES + tiles * L->grid[2] * L->grid_tok[1] * 128) * 4);
    }
    if (strstr(s->name, "llama") && dt != DT_F32)
        assert_true(ksplits > 0);
    /* from T = 512, f16 linears run the wide GEMM: blockIdx.x the M tile of 128 rows, .y the block of
       256 weight rows (128 of each of gate and up); never bf16, which keeps hi + lo in 128 x 128
       tiles.  sm_80: mma.sync, 102,400 bytes of shared memory (a four-stage pipeline of 32 columns);
       sm_90: wgmma, 181,248 (three activation tiles and four weight stages of 64 columns, 128-byte
       rows, 1024 bytes to align them), and the wgmma helpers in the source */
    int wides = 0, others = 0;
    const char *wide = sm == 90 ? "_wgmma128" : "_mmaw128", *other = sm == 90 ? "_mmaw128" : "_wgmma128";
    for (int l = 0; l < p->nlaunch; l++) {
        const RtLaunch *L = &p->launch[l];
        others += strstr(L->kernel, other) != NULL;
        if (!strstr(L->kernel, wide))
            continue;
        wides++;
        assert_int_equal(dt, DT_F16);
        assert_true(L->min_T == 512 && L->max_T == 0);
        assert_true(L->grid[0] == 1 && L->grid_tok[0] == 128 && L->grid_tok[1] == 0 && L->grid[2] == 1);
        assert_int_equal(L->block, 256);
        bool xh = sm == 90 && (ends_with(L->kernel, "x") || ends_with(L->kernel, "xy"));
        assert_int_equal(L->smem, sm == 90 ? ((xh ? 4 : 3) * 128 + 4 * 256) * 128 + 1024
                                           : (2 * 128 * 40 + 4 * 256 * 40) * 2);
        /* column blocks: a group (q, k, v) takes 256 rows of each part in turn; gate and up (two
           weights) 128 rows of each, the same rows */
        bool group = strstr(L->kernel, "_group_") != NULL;
        int64_t nweights = 0, group_blocks = 0, rows = 0;
        for (int a = 0; a < L->nargs; a++)
            if (p->bufs[L->args[a]].kind == RB_WEIGHT) {
                rows = nweights++ ? rows : p->bufs[L->args[a]].shape[0];
                group_blocks += (p->bufs[L->args[a]].shape[0] + 255) / 256;
            }
        assert_true(nweights == 1 || nweights == 2 || group);
        int64_t per = group ? 256 : 256 / nweights;
        assert_int_equal(L->grid[1], group ? group_blocks : (rows + per - 1) / per);
    }
    if (dt == DT_F16 && strstr(s->name, "llama"))
        assert_true(wides > 0);
    assert_int_equal(others, 0);
    check_half_activations(s, p, sm == 90 && dt == DT_F16 && wides > 0);
    assert_true((strstr(src, "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16") != NULL) == (sm == 90 && wides > 0));
    /* the logits' launches after the last attention run on the last row alone */
    assert_true(p->launch[p->nlaunch - 1].tail);
    assert_non_null(strstr(src, "// IR node: %"));
    assert_non_null(strstr(src, "modelc_argmax"));
    build_free(&b);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    assert_true(n > 0 && n < sizeof buf - 1);
    buf[n] = 0;
    return buf;
}

/* An activation that anything but a wgmma GEMM's x reads stays f32: the MLP's
 * norm output also added to the residual (x + h + ...) keeps its f32 norm and
 * gate+up's f32 x, while the attention side still goes f16. */
static void test_half_activations_only_for_wgmma_readers(void **state)
{
    (void)state;
    char *text = read_text("models/llama.mdl");
    const char *from = "x = x + linear(silu(", *to = "x = x + h + linear(silu(";
    char *at = strstr(text, from);
    assert_non_null(at);
    char edited[1 << 16];
    snprintf(edited, sizeof edited, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    Build b;
    build_spec(&b, &shapes[2], DT_F16, 90, edited);
    const Graph *g = b.comp.graph;
    int attns = 0, half_norms = 0, gateups = 0;
    for (int i = 0; i < g->n; i++) {
        const Node *n = g->nodes[i];
        if (!n || !n->nchoice)
            continue;
        const KernelChoice *last = &n->choice[n->nchoice - 1];
        if (n->op == OP_RMS_NORM)
            half_norms += last->y_f16;
        if (n->op == OP_LINEAR_EW && n->a.lew.nw == 2) {   /* gate+up: x is the MLP norm, read by the add too */
            gateups++;
            assert_int_equal(last->family, KF_WGMMA);
            assert_false(last->x_f16);
            assert_true(last->y_f16);   /* its own output is read by down alone */
            const Node *h = n->src[0];
            assert_int_equal(h->op, OP_RMS_NORM);
            assert_true(h->nchoice == 0 || !h->choice[h->nchoice - 1].y_f16);
        }
        if (n->op == OP_ATTENTION) {
            attns++;
            assert_true(last->y_f16);
        }
    }
    assert_true(gateups > 0);
    assert_int_equal(half_norms, attns);   /* the attention norms only */
    check_half_activations(&shapes[2], cuda_program(b.m), true);
    build_free(&b);
}

static void test_program(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        check_program(&shapes[i], DT_F16, 90);
        check_program(&shapes[i], DT_F16, 80);
        check_program(&shapes[i], DT_BF16, 90);
        check_program(&shapes[i], DT_F32, 90);
    }
}

/* ---- NVRTC ----------------------------------------------------------------------- */

static void check_nvrtc(const Shape *s, DType dt, int sm)
{
    Build b;
    build(&b, s, dt, sm);
    if (!cuda_compile(b.m, &b.diags))
        fail_with_diags(&b, "cuda_compile");
    const RtProgram *p = cuda_program(b.m);
    assert_non_null(p->cubin);
    assert_true(p->cubin_len > 1000);
    assert_memory_equal(p->cubin, "\x7f" "ELF", 4);
    for (int l = 0; l < p->nlaunch; l++)
        if (!memmem(p->cubin, (size_t)p->cubin_len, p->launch[l].kernel, strlen(p->launch[l].kernel)))
            fail_msg("%s sm_%d: kernel %s is not in the cubin", s->name, sm, p->launch[l].kernel);
    assert_non_null(memmem(p->cubin, (size_t)p->cubin_len, "modelc_argmax", 13));
    build_free(&b);
}

static void test_nvrtc_all_kernels(void **state)
{
    (void)state;
    if (getenv("MODELC_NO_NVRTC"))
        skip();
    const char *nv = cuda_nvrtc_description();
    if (strncmp(nv, "NVRTC ", 6))
        fail_msg("%s (set MODELC_NO_NVRTC=1 to skip the CUDA compile checks)", nv);
    static const DType dts[] = {DT_F16, DT_BF16};
    static const int sms[] = {80, 90};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        for (int d = 0; d < 2; d++)
            for (int a = 0; a < 2; a++)
                if (i != 3 || a == 1)   /* the 8B shape: sm_90 only (its kernels equal the 1B's but for sizes) */
                    check_nvrtc(&shapes[i], dts[d], sms[a]);
    check_nvrtc(&shapes[0], DT_F32, 90);
}

/* MODELC_TIMELINE: every kernel opens with a TlScope whose id is its name's
 * hash (the runtime finds launches by it), notes each pdl_wait, and NVRTC
 * compiles the log in; the report matches a step's blocks to its launches
 * in order, shuffled as they come back, and says which launch logged none. */
static void test_timeline(void **state)
{
    (void)state;
    with_timeline = true;
    Build b;
    build(&b, &shapes[2], DT_F16, 90);
    with_timeline = false;
    const char *src = cuda_source(b.m);
    const RtProgram *p = cuda_program(b.m);
    int scopes = 0, waits = 0, noted = 0;
    for (const char *at = src; (at = strstr(at, "TlScope tl_(")); at++)
        scopes++;
    const char *first = strstr(src, "TlScope tl_(");
    assert_non_null(first);
    for (const char *at = first; (at = strstr(at, "pdl_wait();")); at++)
        waits++;
    for (const char *at = first; (at = strstr(at, "pdl_wait(); tl_.waited();")); at++)
        noted++;
    assert_true(waits > 0);
    assert_int_equal(noted, waits);
    int distinct = 0;
    for (int l = 0; l < p->nlaunch; l++) {
        int e = 0;
        while (e < l && strcmp(p->launch[e].kernel, p->launch[l].kernel))
            e++;
        distinct += e == l;
        char want[64];
        snprintf(want, sizeof want, "TlScope tl_(0x%08xu);", rt_timeline_id(p->launch[l].kernel));
        assert_non_null(strstr(src, want));
    }
    assert_int_equal(scopes, distinct);
    if (!getenv("MODELC_NO_NVRTC")) {
        if (!cuda_compile(b.m, &b.diags))
            fail_with_diags(&b, "cuda_compile");
        assert_non_null(memmem(p->cubin, (size_t)p->cubin_len, "modelc_tl_n", 11));
    }

    /* a decode step's blocks: each launch starts 3 us after the one before and runs 5 us, its blocks
       starting over its first 2 us; in the second round the last launch's blocks are missing */
    for (int round = 0; round < 2; round++) {
        RtTlRecord *rec = calloc(RT_TL_CAP, sizeof *rec);
        assert_non_null(rec);
        int64_t n = 0, nrun = 0, gone = -1, last = -1;
        uint64_t t = 1000000;
        srand(7 + round);
        for (int l = 0; l < p->nlaunch; l++) {
            const RtLaunch *L = &p->launch[l];
            int64_t blocks = 1;
            for (int d = 0; d < 3; d++)
                blocks *= L->grid_tok[d] > 0 ? L->grid[d] : L->grid[d];   /* T = 1: one of each token group */
            if (!runs_at(L, 1))
                continue;
            nrun++;
            last = l;
            for (int64_t i = 0; i < blocks; i++) {
                uint64_t s0 = t + (i ? (uint64_t)(rand() % 2000) : 0);
                rec[n++] = (RtTlRecord){s0, s0 + 500, i == 0 ? t + 5000 : s0 + 1000 + (uint64_t)(rand() % 2000),
                                        (uint64_t)rt_timeline_id(L->kernel) << 32 | (uint64_t)(i % 132)};
            }
            t += 3000;
        }
        if (round == 1) {   /* the log full before the last launch (the lm_head, a kernel of its own) */
            gone = nrun - 1;
            uint64_t id = rt_timeline_id(p->launch[last].kernel);
            assert_non_null(strstr(p->launch[last].what, "logits"));
            int64_t kept = 0;
            for (int64_t i = 0; i < n; i++)
                if (rec[i].id_sm >> 32 != id)
                    rec[kept++] = rec[i];
            assert_true(kept < n);
            n = kept;
        }
        for (int64_t i = n - 1; i > 0; i--) {   /* in no order */
            int64_t j = rand() % (i + 1);
            RtTlRecord x = rec[i];
            rec[i] = rec[j];
            rec[j] = x;
        }
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        assert_true(rt_tl_report(f, p, 1, 1, rec, n));
        fclose(f);
        char head[128];
        snprintf(head, sizeof head, "(T = 1): %lld launches, %.1f us", (long long)nrun,
                 (double)(nrun - 1 - round) * 3.0 + 5.0);
        if (!strstr(out, head))
            fail_msg("round %d: no \"%s\" in:\n%s", round, head, out);
        /* every launch that logged: ends 5 us after it starts, its ends 3 us apart */
        int rows = 0, empty = 0;
        for (const char *line = strstr(out, "\n  0 "); line; line = strchr(line + 1, '\n')) {
            int idx;
            char kern[64];
            long long blocks;
            double st, w1, w, en, adds;
            if (sscanf(line + 1, "%d %63s %lld %lf %lf %lf %lf %lf", &idx, kern, &blocks, &st, &w1, &w, &en, &adds) == 8) {
                assert_int_equal(idx, rows);
                assert_float_equal(st, idx * 3.0, 1e-6);
                assert_float_equal(w1, idx * 3.0 + 0.5, 1e-6);   /* block 0 starts first, waits 0.5 us */
                assert_true(w >= w1 && w <= idx * 3.0 + 2.5);
                assert_float_equal(en, idx * 3.0 + 5.0, 1e-6);
                assert_float_equal(adds, idx ? 3.0 : 5.0, 1e-6);
                rows++;
            } else if (strstr(line + 1, "(no block logged)")) {
                assert_true(sscanf(line + 1, "%d", &idx) == 1);
                if (idx != gone)
                    fail_msg("round %d: launch %d logged no block:\n%s", round, idx, (fputs(out, stderr), ""));
                rows++;
                empty++;
            }
        }
        assert_int_equal(rows, nrun);
        assert_int_equal(empty, round);
        assert_non_null(strstr(out, "per kernel"));
        if (round)
            assert_non_null(strstr(out, "blocks had no record"));
        else
            assert_null(strstr(out, "blocks had no record"));
        free(out);
        free(rec);
    }
    build_free(&b);
}

/* A kernel NVRTC rejects: the message carries NVRTC's log and where the source went. */
static void test_nvrtc_error_message(void **state)
{
    (void)state;
    if (getenv("MODELC_NO_NVRTC"))
        skip();
    Build b;
    build(&b, &shapes[0], DT_F16, 90);
    char *src = (char *)cuda_source(b.m);
    char *at = strstr(src, "modelc_argmax");
    assert_non_null(at);
    memcpy(at, "modelc_arg{ax", 13);   /* a syntax error in the prelude's kernel */
    assert_false(cuda_compile(b.m, &b.diags));
    char *buf = test_diag_text(&b.diags);
    assert_non_null(strstr(buf, "NVRTC could not compile"));
    assert_non_null(strstr(buf, "the source is kept at /tmp/modelc-llama-"));
    assert_non_null(strstr(buf, "error"));
    const char *p = strstr(buf, "/tmp/modelc-llama-");
    char path[256];
    sscanf(p, "%255[^:]", path);
    FILE *kept = fopen(path, "r");
    assert_non_null(kept);
    fclose(kept);
    remove(path);
    free(buf);
    build_free(&b);
}

/* ---- the plan of `modelc build --target cuda` ------------------------------------ */

static void dummy_kernel(void **bufs, int64_t T, int64_t pos0, int64_t lo, int64_t hi)
{
    (void)bufs, (void)T, (void)pos0, (void)lo, (void)hi;
}

/* A plan with one edit (the first `from` replaced by `to`) must be refused,
 * the error saying `why`. */
static void check_plan_refused(const char *json, const char *from, const char *to, int64_t nkernels, const char *why)
{
    char *edited = NULL;
    const char *at = from ? strstr(json, from) : json;
    assert_non_null(at);
    if (from)
        assert_true(asprintf(&edited, "%.*s%s%s", (int)(at - json), json, to, at + strlen(from)) > 0);
    const char *text = from ? edited : json;
    RtProgram *q = NULL;
    RtErr err = {.msg = ""};
    RtKernelFn *fns = calloc((size_t)nkernels + 1, sizeof *fns);   /* a CPU plan's table: stand-ins */
    assert_non_null(fns);
    for (int64_t i = 0; i < nkernels; i++)
        fns[i] = dummy_kernel;
    assert_false(rt_program_from_json(text, strlen(text), fns, nkernels, &q, &err));
    free(fns);
    assert_null(q);
    if (!strstr(err.msg, why))
        fail_msg("plan edited '%s' -> '%s': '%s' does not say '%s'", from ? from : "", to ? to : "", err.msg, why);
    free(edited);
}

/* A CUDA program to JSON and back is the same program (every field the
 * CUDA runtime reads), and writing it again gives the same text. */
static void check_plan(const Shape *s, DType dt)
{
    Build b;
    build(&b, s, dt, 80);
    const RtProgram *p = cuda_program(b.m);
    char *json = rt_program_to_json(p);
    assert_non_null(json);
    RtProgram *q = NULL;
    RtErr err = {.msg = ""};
    if (!rt_program_from_json(json, strlen(json), NULL, 0, &q, &err))
        fail_msg("%s: %s", s->name, err.msg);
    assert_int_equal(q->target, RT_TARGET_CUDA);
    assert_int_equal(q->sm, 80);
    assert_int_equal(q->nbufs, p->nbufs);
    assert_int_equal(q->nlaunch, p->nlaunch);
    assert_int_equal(q->tokens_buf, p->tokens_buf);
    assert_int_equal(q->logits_buf, p->logits_buf);
    assert_true(q->dequantize == p->dequantize);
    for (int i = 0; i < p->nbufs; i++) {
        const RtBuf *x = &p->bufs[i], *y = &q->bufs[i];
        assert_int_equal(y->kind, x->kind);
        assert_int_equal(y->dtype, x->dtype);
        assert_int_equal(y->rank, x->rank);
        assert_memory_equal(y->shape, x->shape, sizeof x->shape[0] * (size_t)x->rank);
        assert_int_equal(y->bytes_per_pos, x->bytes_per_pos);
        assert_int_equal(y->bytes_const, x->bytes_const);
    }
    for (int l = 0; l < p->nlaunch; l++) {
        const RtLaunch *x = &p->launch[l], *y = &q->launch[l];
        assert_string_equal(y->kernel, x->kernel);
        assert_int_equal(y->nargs, x->nargs);
        assert_memory_equal(y->args, x->args, sizeof x->args[0] * (size_t)x->nargs);
        assert_int_equal(y->min_T, x->min_T);
        assert_int_equal(y->max_T, x->max_T);
        assert_memory_equal(y->grid, x->grid, sizeof x->grid);
        assert_memory_equal(y->grid_tok, x->grid_tok, sizeof x->grid_tok);
        assert_int_equal(y->block, x->block);
        assert_int_equal(y->smem, x->smem);
        assert_true(y->tail == x->tail);
    }
    char *again = rt_program_to_json(q);
    assert_string_equal(again, json);
    free(again);
    rt_program_free(q);
    /* and what the reader refuses */
    check_plan_refused(json, NULL, NULL, 1, "kernel table");
    check_plan_refused(json, "\"target\":\"cuda\"", "\"target\":\"gpu\"", 0, "'target'");
    check_plan_refused(json, "\"block\":256", "\"block\":100", 0, "whole warps");
    check_plan_refused(json, "\"grid\":[", "\"grid\":[0,", 0, "CUDA launch");
    check_plan_refused(json, "\"sm\":80", "\"sm\":7", 0, "'sm'");
    if (strstr(json, "\"kind\":\"scratch\""))   /* scratch buffers are for CUDA programs */
        check_plan_refused(json, "\"target\":\"cuda\",\"sm\":80", "\"target\":\"cpu\"", p->nlaunch, "buffer kind");
    free(json);
    build_free(&b);
}

static void test_plan_roundtrip(void **state)
{
    (void)state;
    check_plan(&shapes[0], DT_F16);
    check_plan(&shapes[2], DT_BF16);   /* llama-1b: split-K and split-KV scratch */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_target),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_gemv_prefetch_knob),
        cmocka_unit_test(test_attn_prefetch_knob),
        cmocka_unit_test(test_attn_early_kv),
        cmocka_unit_test(test_epilogue),
        cmocka_unit_test(test_select_cpu_is_untouched),
        cmocka_unit_test(test_program),
        cmocka_unit_test(test_half_activations_only_for_wgmma_readers),
        cmocka_unit_test(test_nvrtc_all_kernels),
        cmocka_unit_test(test_nvrtc_error_message),
        cmocka_unit_test(test_timeline),
        cmocka_unit_test(test_plan_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
