/* tests/fuzz/fuzz_config.c — libFuzzer target: config.json text.
 *
 * rt_config_parse on the input, then rt_config_get on dotted keys: the
 * ones models/llama.mdl reads, nested and malformed ones ("", ".", "a..b",
 * a trailing dot).  A config that parses then binds the parameters of
 * models/llama.mdl and models/mlp.mdl (parsed once, at start-up) through
 * the whole pass pipeline, as `modelc check SPEC --config config.json` does:
 * values from a config reach shape arithmetic, repeat counts and rope
 * attributes there (up to FUZZ_MAX_LAYERS layers: see below). */
#include <stdbool.h>

#include "frontend/frontend.h"
#include "passes/passes.h"
#include "tests/fuzz/fuzz_common.h"

#define FUZZ_MAX_LAYERS 256

#ifndef FUZZ_ROOT
#define FUZZ_ROOT "."
#endif

static const char *const keys[] = {
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
    "intermediate_size", "rms_norm_eps", "tie_word_embeddings", "rope_theta", "rope_parameters.rope_theta",
    "rope_scaling.rope_type", "rope_scaling.type", "rope_parameters.rope_type", "rope_scaling.factor",
    "rope_scaling.original_max_position_embeddings", "a.b.c", "a.b", "a", "", ".", "a..b", "a.", ".a",
    "architectures", "architectures.0", "s", "i", "f",
};

typedef struct Spec {
    Arena *arena;      /* lives for the whole run: the modules point into it */
    const Module *m;
} Spec;

static Spec specs[2];

static void load_spec(Spec *s, const char *rel)
{
    char path[1024];
    const char *root = getenv("FUZZ_ROOT");
    snprintf(path, sizeof path, "%s/%s", root && *root ? root : FUZZ_ROOT, rel);
    s->arena = arena_new();
    Diags d;
    diag_init(&d, s->arena);
    Module *m = fe_parse_file(path, s->arena, &d);
    if (!m || !fe_check(m, &d)) {
        diag_print(&d, stderr);
        fprintf(stderr, "fuzz_config: cannot read %s (run from the repository root or set FUZZ_ROOT)\n", path);
        abort();
    }
    s->m = m;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    load_spec(&specs[0], "models/llama.mdl");
    load_spec(&specs[1], "models/mlp.mdl");
    return 0;
}

static FILE *devnull(void)
{
    static FILE *f;
    if (!f)
        f = fopen("/dev/null", "w");
    return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    RtConfig *c = NULL;
    RtErr err = {.msg = ""};
    if (!rt_config_parse("config.json", (const char *)data, size, &c, &err)) {
        FUZZ_CHECK(c == NULL);
        FUZZ_CHECK_ERR(err);
        return 0;
    }
    FUZZ_CHECK(c != NULL);
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        RtCfgValue v = rt_config_get(c, keys[k]);
        FUZZ_CHECK(v.kind >= CFG_MISSING && v.kind <= CFG_OTHER);
        if (v.kind == CFG_STRING)
            fz_touch(v.s, strlen(v.s) + 1);
        if (v.kind == CFG_INT)
            FUZZ_CHECK(v.f == (double)v.i);
    }
    FUZZ_CHECK(rt_config_get(c, NULL).kind == CFG_MISSING);
    FUZZ_CHECK(rt_config_get(NULL, "a").kind == CFG_MISSING);

    /* Lowering expands one block per layer: the passes are linear in the node
     * count (fold's CSE was quadratic: corpus/config/regress-2000-layers.json
     * took a minute), but past a few hundred layers an input still costs tens
     * of milliseconds and finds nothing new, so skip it. */
    RtCfgValue layers = rt_config_get(c, "num_hidden_layers");
    bool pipeline = !(layers.kind == CFG_INT && layers.i > FUZZ_MAX_LAYERS);
    for (int i = 0; pipeline && i < 2; i++) {
        Arena *a = arena_new();
        Diags d;
        diag_init(&d, a);
        CompileEnv env = {.config = c, .config_path = "config.json"};
        Compilation comp = {.arena = a, .diags = &d, .module = specs[i].m, .env = &env};
        PassOptions po = {.dump = devnull()};
        bool ok = pass_run_pipeline(&comp, &po);
        FUZZ_CHECK(ok != diag_has_errors(&d));
        diag_print(&d, devnull());
        if (ok)
            ir_print(comp.graph, devnull());
        arena_free(a);
    }
    rt_config_free(c);
    return 0;
}
