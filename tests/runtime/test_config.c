/* tests/runtime/test_config.c — config.json parsing and dotted-key lookup:
 * every value kind, missing versus null, parents that are not objects, and
 * the rejections (not an object, duplicate keys at any depth, bad JSON). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/runtime.h"

static const char sample[] =
    "{\n"
    "  \"model_type\": \"llama\",\n"
    "  \"hidden_size\": 4096,\n"
    "  \"rms_norm_eps\": 1e-05,\n"
    "  \"tie_word_embeddings\": false,\n"
    "  \"use_cache\": true,\n"
    "  \"pad_token_id\": null,\n"
    "  \"eos_token_id\": [128001, 128009],\n"
    "  \"max_position_embeddings\": 9007199254740993,\n"
    "  \"rope_theta\": 500000.0,\n"
    "  \"rope_scaling\": {\"factor\": 8.0, \"rope_type\": \"llama3\", \"inner\": {\"k\": -3}, \"none\": null}\n"
    "}\n";

static RtConfig *parse_ok(const char *text)
{
    RtConfig *c = NULL;
    RtErr err = {.msg = ""};
    if (!rt_config_parse("config.json", text, strlen(text), &c, &err))
        fail_msg("rt_config_parse failed: %s", err.msg);
    assert_non_null(c);
    return c;
}

static void expect_parse_error(const char *text, size_t len, const char *msg)
{
    RtConfig *c = (RtConfig *)&c;
    RtErr err = {.msg = ""};
    assert_false(rt_config_parse("config.json", text, len, &c, &err));
    assert_null(c);
    assert_string_equal(err.msg, msg);
}

static void test_value_kinds(void **state)
{
    (void)state;
    RtConfig *c = parse_ok(sample);
    RtCfgValue v = rt_config_get(c, "model_type");
    assert_int_equal(v.kind, CFG_STRING);
    assert_string_equal(v.s, "llama");

    v = rt_config_get(c, "hidden_size");
    assert_int_equal(v.kind, CFG_INT);
    assert_int_equal(v.i, 4096);
    assert_true(v.f == 4096.0);

    v = rt_config_get(c, "max_position_embeddings");   /* beyond double's exact range */
    assert_int_equal(v.kind, CFG_INT);
    assert_true(v.i == 9007199254740993LL);

    v = rt_config_get(c, "rms_norm_eps");
    assert_int_equal(v.kind, CFG_FLOAT);
    assert_true(v.f == 1e-05);

    v = rt_config_get(c, "rope_theta");                 /* "500000.0" is a real */
    assert_int_equal(v.kind, CFG_FLOAT);
    assert_true(v.f == 500000.0);

    v = rt_config_get(c, "tie_word_embeddings");
    assert_int_equal(v.kind, CFG_BOOL);
    assert_false(v.b);
    v = rt_config_get(c, "use_cache");
    assert_int_equal(v.kind, CFG_BOOL);
    assert_true(v.b);

    assert_int_equal(rt_config_get(c, "pad_token_id").kind, CFG_NULL);
    assert_int_equal(rt_config_get(c, "eos_token_id").kind, CFG_OTHER);
    assert_int_equal(rt_config_get(c, "rope_scaling").kind, CFG_OTHER);
    rt_config_free(c);
}

static void test_dotted_keys(void **state)
{
    (void)state;
    RtConfig *c = parse_ok(sample);
    RtCfgValue v = rt_config_get(c, "rope_scaling.factor");
    assert_int_equal(v.kind, CFG_FLOAT);
    assert_true(v.f == 8.0);
    v = rt_config_get(c, "rope_scaling.rope_type");
    assert_int_equal(v.kind, CFG_STRING);
    assert_string_equal(v.s, "llama3");
    v = rt_config_get(c, "rope_scaling.inner.k");
    assert_int_equal(v.kind, CFG_INT);
    assert_int_equal(v.i, -3);
    assert_true(v.f == -3.0);
    assert_int_equal(rt_config_get(c, "rope_scaling.none").kind, CFG_NULL);
    rt_config_free(c);
}

static void test_missing(void **state)
{
    (void)state;
    RtConfig *c = parse_ok(sample);
    static const char *const absent[] = {
        "num_experts",                 /* not there */
        "rope_scaling.low_freq",       /* parent there, child not */
        "hidden_size.x",               /* parent is not an object */
        "eos_token_id.0",              /* arrays are not descended */
        "pad_token_id.x",              /* null parent */
        "rope_scaling.inner.k.z",
        "", ".", "rope_scaling.", ".rope_scaling", "rope_scaling..factor",
    };
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
        RtCfgValue v = rt_config_get(c, absent[i]);
        if (v.kind != CFG_MISSING)
            fail_msg("'%s' should be missing, got kind %d", absent[i], v.kind);
    }
    assert_int_equal(rt_config_get(NULL, "hidden_size").kind, CFG_MISSING);
    assert_int_equal(rt_config_get(c, NULL).kind, CFG_MISSING);
    rt_config_free(c);
}

static void test_not_an_object(void **state)
{
    (void)state;
    expect_parse_error("[1, 2]", 6, "config.json: top level is not an object");
    expect_parse_error("42", 2, "config.json: top level is not an object");
    expect_parse_error("\"x\"", 3, "config.json: top level is not an object");
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    const char *top = "{\"a\": 1,\n \"a\": 2}";
    expect_parse_error(top, strlen(top), "config.json:2:4: duplicate object key near '\"a\"'");
    const char *nested = "{\"rope_scaling\": {\"factor\": 8.0, \"factor\": 4.0}}";
    expect_parse_error(nested, strlen(nested),
                       "config.json:1:41: duplicate object key near '\"factor\"'");
}

static void test_bad_json(void **state)
{
    (void)state;
    expect_parse_error("{\"a\": }", 7, "config.json:1:7: unexpected token near '}'");
    expect_parse_error("", 0, "config.json:1:0: unexpected token near end of file");
    expect_parse_error("{\"a\": \"\xff\"}", 10, "config.json:1:7: unable to decode byte 0xff near '\"'");
    expect_parse_error("{} {}", 5, "config.json:1:4: end of file expected near '{'");
}

static void test_load_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/rt_cfg_XXXXXX", p[64];
    assert_non_null(mkdtemp(dir));
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(sample, 1, strlen(sample), f), strlen(sample));
    assert_int_equal(fclose(f), 0);

    RtConfig *c = NULL;
    RtErr err = {.msg = ""};
    assert_true(rt_config_load(p, &c, &err));
    assert_int_equal(rt_config_get(c, "hidden_size").i, 4096);
    rt_config_free(c);
    rt_config_free(NULL);

    f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fputs("[]", f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    char want[128];
    snprintf(want, sizeof want, "%s: top level is not an object", p);
    c = (RtConfig *)&c;
    assert_false(rt_config_load(p, &c, &err));
    assert_null(c);
    assert_string_equal(err.msg, want);

    assert_int_equal(unlink(p), 0);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", p);
    assert_false(rt_config_load(p, &c, &err));
    assert_string_equal(err.msg, want);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_kinds),
        cmocka_unit_test(test_dotted_keys),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
