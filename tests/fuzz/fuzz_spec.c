/* tests/fuzz/fuzz_spec.c — libFuzzer target: spec text through the frontend
 * and the pass pipeline.
 *
 * fe_parse_string and fe_check on the input, as `modelc check` does; the
 * diagnostics rendered (diag_print, with its source excerpt and caret) to
 * /dev/null.  A spec that checks goes through the whole pipeline (lower,
 * infer, fold, fuse, epilogue, quantize, plan, select; no codegen; CUDA target for
 * odd-sized inputs, CPU otherwise) with a small fixed config.json that
 * binds the keys models/llama.mdl and models/mlp.mdl read (small sizes, so
 * graphs stay small), and --set overrides for those of a few parameter names
 * that the spec declares at top level (an unknown --set name is an error
 * before infer runs).  The planned graph is printed to /dev/null too, as
 * --print-after does. */
#include <stdbool.h>

#include "frontend/frontend.h"
#include "passes/passes.h"
#include "tests/fuzz/fuzz_common.h"

static const char config_json[] =
    "{\"vocab_size\": 16, \"hidden_size\": 8, \"intermediate_size\": 12, \"num_hidden_layers\": 2,"
    " \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"rms_norm_eps\": 1e-5,"
    " \"tie_word_embeddings\": false, \"rope_theta\": 10000.0,"
    " \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0,"
    "  \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 32},"
    " \"n\": 4, \"d\": 8, \"name\": \"w\", \"flag\": true, \"x\": {\"y\": 2}, \"empty\": null}";

/* --set candidates: used only when the spec declares the parameter */
static const char *const set_candidates[][2] = {
    {"n_layers", "1"}, {"eps", "1e-6"}, {"tied", "true"}, {"rope_type", "default"}, {"n", "2"}, {"dim", "8"},
};
#define NCAND (sizeof set_candidates / sizeof set_candidates[0])

static RtConfig *config;
static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    RtErr err = {.msg = ""};
    if (!rt_config_parse("config.json", config_json, sizeof config_json - 1, &config, &err)) {
        fprintf(stderr, "fuzz_spec: %s\n", err.msg);
        abort();
    }
    devnull = fopen("/dev/null", "w");
    FUZZ_CHECK(devnull != NULL);
    return 0;
}

static bool declares(const Module *m, const char *name)
{
    for (const Stmt *s = m->body; s; s = s->next)
        if (s->kind == ST_PARAM && s->name && strcmp(s->name, name) == 0)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Arena *a = arena_new();
    Diags d;
    diag_init(&d, a);
    Module *m = fe_parse_string("fuzz.mdl", (const char *)data, size, a, &d);
    FUZZ_CHECK(m != NULL || diag_has_errors(&d));
    bool checked = m && fe_check(m, &d);
    FUZZ_CHECK(checked || diag_has_errors(&d));
    if (checked) {
        FUZZ_CHECK(!diag_has_errors(&d));
        const char *names[NCAND], *values[NCAND];
        int nset = 0;
        for (size_t i = 0; i < NCAND; i++)
            if (declares(m, set_candidates[i][0])) {
                names[nset] = set_candidates[i][0];
                values[nset++] = set_candidates[i][1];
            }
        /* odd-sized inputs compile for CUDA (sm_90, no codegen): passes epilogue and select run too */
        CompileEnv env = {.config = config, .config_path = "config.json", .nset = nset,
                          .set_names = names, .set_values = values,
                          .target = (size & 1) ? RT_TARGET_CUDA : RT_TARGET_CPU, .sm = 90, .sms = 132};
        Compilation comp = {.arena = a, .diags = &d, .module = m, .env = &env};
        PassOptions po = {.dump = devnull};
        bool ok = pass_run_pipeline(&comp, &po);
        FUZZ_CHECK(ok != diag_has_errors(&d));
        if (ok)
            ir_print(comp.graph, devnull);
    }
    diag_print(&d, fz_verbose() ? stderr : devnull);
    if (fz_verbose())
        fprintf(stderr, "fuzz_spec: %s\n",
                !checked ? "rejected by the frontend" : diag_has_errors(&d) ? "rejected by the passes" : "compiled");
    arena_free(a);
    return 0;
}
