/* tests/runtime/test_checkpoint.c — rt_ckpt_open over a single file, a
 * directory of shards, and a sharded directory with its index; every
 * inconsistency between index and files, a hostile index and a tensor held
 * twice are rejected with the exact message.
 *
 * Each test builds its own directory under one mkdtemp root.  shard() writes
 * a .safetensors whose tensors are all U8 [2], named by a comma list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "tests/test_util.h"

#include "runtime/runtime.h"

static char root[64];

/* root/sub, created; returned in a static buffer (one live at a time). */
static const char *subdir(const char *sub)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", root, sub);
    assert_int_equal(mkdir(p, 0755), 0);
    return p;
}

static void write_file(const char *dir, const char *name, const void *bytes, size_t n)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    write_file(dir, name, text, strlen(text));
}

/* dir/file: one U8 [2] tensor per name in the comma list; data bytes count up. */
static void shard(const char *dir, const char *file, const char *names)
{
    char header[2048], list[512];
    size_t n = 0, at = 0;
    snprintf(list, sizeof list, "%s", names);
    n += (size_t)snprintf(header, sizeof header, "{");
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        n += (size_t)snprintf(header + n, sizeof header - n,
                              "%s\"%s\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [%zu, %zu]}",
                              at ? ", " : "", t, at, at + 2);
        at += 2;
    }
    n += (size_t)snprintf(header + n, sizeof header - n, "}");
    unsigned char buf[4096];
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, header, n);
    for (size_t i = 0; i < at; i++)
        buf[8 + n + i] = (unsigned char)i;
    write_file(dir, file, buf, 8 + n + at);
}

static RtCheckpoint *open_ok(const char *p)
{
    RtCheckpoint *c = NULL;
    RtErr err = {.msg = ""};
    if (!rt_ckpt_open(p, &c, &err))
        fail_msg("rt_ckpt_open failed: %s", err.msg);
    assert_non_null(c);
    return c;
}

/* rt_ckpt_open(p) fails with exactly msg. */
static void expect_error(const char *p, const char *msg)
{
    RtCheckpoint *c = (RtCheckpoint *)&c;
    RtErr err = {.msg = ""};
    assert_false(rt_ckpt_open(p, &c, &err));
    assert_null(c);
    assert_string_equal(err.msg, msg);
}

static void expect_file(const RtCheckpoint *c, const char *tensor, const char *dir, const char *file)
{
    char want[600];
    snprintf(want, sizeof want, "%s/%s", dir, file);
    const RtTensor *t = rt_ckpt_find(c, tensor);
    if (!t)
        fail_msg("tensor '%s' not found", tensor);
    assert_string_equal(t->name, tensor);
    assert_string_equal(t->file, want);
}

/* ---- accepted layouts ------------------------------------------------------ */

static void test_single_file(void **state)
{
    (void)state;
    const char *d = subdir("single");
    shard(d, "w.safetensors", "b,a");
    write_text(d, "config.json", "{}");
    char p[600];
    snprintf(p, sizeof p, "%s/w.safetensors", d);
    RtCheckpoint *c = open_ok(p);
    assert_int_equal(rt_ckpt_count(c), 2);
    assert_string_equal(rt_ckpt_tensor(c, 0)->name, "a");   /* by name */
    assert_string_equal(rt_ckpt_tensor(c, 1)->name, "b");
    assert_null(rt_ckpt_tensor(c, 2));
    expect_file(c, "a", d, "w.safetensors");
    assert_null(rt_ckpt_find(c, "c"));
    assert_null(rt_ckpt_config_path(c));                  /* single file: no config */
    rt_ckpt_close(c);
}

static void test_dir_single_file(void **state)
{
    (void)state;
    const char *d = subdir("dir1");
    shard(d, "model.safetensors", "embed,lm_head");
    write_text(d, "config.json", "{\"hidden_size\": 8}");
    write_text(d, "README.md", "not a shard");
    RtCheckpoint *c = open_ok(d);
    assert_int_equal(rt_ckpt_count(c), 2);
    expect_file(c, "embed", d, "model.safetensors");
    const RtTensor *t = rt_ckpt_find(c, "lm_head");
    assert_non_null(t);
    assert_int_equal(t->nbytes, 2);
    assert_int_equal(((const unsigned char *)t->data)[0], 2);
    char cfg[600];
    snprintf(cfg, sizeof cfg, "%s/config.json", d);
    assert_string_equal(rt_ckpt_config_path(c), cfg);
    rt_ckpt_close(c);
}

static void test_dir_without_config(void **state)
{
    (void)state;
    const char *d = subdir("noconfig");
    shard(d, "model.safetensors", "w");
    RtCheckpoint *c = open_ok(d);
    assert_null(rt_ckpt_config_path(c));
    rt_ckpt_close(c);
}

static void test_dir_shards_without_index(void **state)
{
    (void)state;
    const char *d = subdir("noindex");
    shard(d, "b.safetensors", "y,z");
    shard(d, "a.safetensors", "x");
    shard(d, "c.safetensors", "");              /* empty shard: fine */
    RtCheckpoint *c = open_ok(d);
    assert_int_equal(rt_ckpt_count(c), 3);
    expect_file(c, "x", d, "a.safetensors");
    expect_file(c, "y", d, "b.safetensors");
    expect_file(c, "z", d, "b.safetensors");
    rt_ckpt_close(c);
}

static void test_sharded_with_index(void **state)
{
    (void)state;
    const char *d = subdir("sharded");
    shard(d, "model-00001-of-00002.safetensors", "layers.0.w,embed");
    shard(d, "model-00002-of-00002.safetensors", "layers.1.w,lm_head");
    shard(d, "stray.safetensors", "embed");       /* not in the index: ignored */
    write_text(d, "model.safetensors.index.json",
               "{\"metadata\": {\"total_size\": 8}, \"weight_map\": {"
               "\"embed\": \"model-00001-of-00002.safetensors\","
               "\"layers.0.w\": \"model-00001-of-00002.safetensors\","
               "\"layers.1.w\": \"model-00002-of-00002.safetensors\","
               "\"lm_head\": \"model-00002-of-00002.safetensors\"}}");
    RtCheckpoint *c = open_ok(d);
    assert_int_equal(rt_ckpt_count(c), 4);
    expect_file(c, "embed", d, "model-00001-of-00002.safetensors");
    expect_file(c, "layers.0.w", d, "model-00001-of-00002.safetensors");
    expect_file(c, "layers.1.w", d, "model-00002-of-00002.safetensors");
    expect_file(c, "lm_head", d, "model-00002-of-00002.safetensors");
    for (int i = 1; i < rt_ckpt_count(c); i++)
        assert_true(strcmp(rt_ckpt_tensor(c, i - 1)->name, rt_ckpt_tensor(c, i)->name) < 0);
    rt_ckpt_close(c);
}

/* ---- rejected -------------------------------------------------------------- */

static void test_missing_path(void **state)
{
    (void)state;
    char p[600], msg[2048];
    snprintf(p, sizeof p, "%s/nowhere", root);
    snprintf(msg, sizeof msg, "%s: cannot open checkpoint: No such file or directory", p);
    expect_error(p, msg);
}

static void test_dir_without_safetensors(void **state)
{
    (void)state;
    const char *d = subdir("empty");
    write_text(d, "config.json", "{}");
    char msg[2048];
    snprintf(msg, sizeof msg, "%s: no *.safetensors files in the directory", d);
    expect_error(d, msg);
}

static void test_broken_shard_named(void **state)
{
    (void)state;
    const char *d = subdir("broken");
    shard(d, "a.safetensors", "x");
    write_file(d, "b.safetensors", "\x02\0\0\0\0\0\0\0[]", 10);
    char msg[2048];
    snprintf(msg, sizeof msg, "%s/b.safetensors: header's top level is not a JSON object", d);
    expect_error(d, msg);
}

static void test_tensor_in_two_files(void **state)
{
    (void)state;
    const char *d = subdir("twice");
    shard(d, "a.safetensors", "x,shared");
    shard(d, "b.safetensors", "shared,y");
    char msg[2048];
    snprintf(msg, sizeof msg, "tensor 'shared' appears in both %s/a.safetensors and %s/b.safetensors", d, d);
    expect_error(d, msg);
}

static void test_tensor_in_two_files_indexed(void **state)
{
    (void)state;
    const char *d = subdir("twice_idx");
    shard(d, "a.safetensors", "x,shared");
    shard(d, "b.safetensors", "shared");
    write_text(d, "model.safetensors.index.json",
               "{\"weight_map\": {\"x\": \"a.safetensors\", \"shared\": \"b.safetensors\"}}");
    char msg[2048];
    snprintf(msg, sizeof msg, "tensor 'shared' appears in both %s/a.safetensors and %s/b.safetensors", d, d);
    expect_error(d, msg);
}

static void test_index_names_missing_file(void **state)
{
    (void)state;
    const char *d = subdir("missing_shard");
    shard(d, "model-00001-of-00002.safetensors", "a");
    write_text(d, "model.safetensors.index.json",
               "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\","
               " \"b\": \"model-00002-of-00002.safetensors\"}}");
    char msg[2048];
    snprintf(msg, sizeof msg, "%s/model.safetensors.index.json: weight_map names "
             "'model-00002-of-00002.safetensors', which is not a file in %s", d, d);
    expect_error(d, msg);
}

static void test_index_tensor_not_in_its_file(void **state)
{
    (void)state;
    const char *d = subdir("misplaced");
    shard(d, "a.safetensors", "x");
    shard(d, "b.safetensors", "y");
    write_text(d, "model.safetensors.index.json",
               "{\"weight_map\": {\"x\": \"b.safetensors\", \"y\": \"b.safetensors\"}}");
    char msg[2048];
    /* a.safetensors is not named by the index, so x is simply absent */
    snprintf(msg, sizeof msg, "%s/model.safetensors.index.json: tensor 'x' is mapped to "
             "'b.safetensors', which does not hold it", d);
    expect_error(d, msg);
}

static void test_index_tensor_in_other_listed_file(void **state)
{
    (void)state;
    const char *d = subdir("swapped");
    shard(d, "a.safetensors", "x");
    shard(d, "b.safetensors", "y");
    write_text(d, "model.safetensors.index.json",
               "{\"weight_map\": {\"x\": \"b.safetensors\", \"y\": \"a.safetensors\"}}");
    char msg[2048];
    snprintf(msg, sizeof msg, "%s/model.safetensors.index.json: tensor 'x' is mapped to "
             "'b.safetensors' but is in %s/a.safetensors", d, d);
    expect_error(d, msg);
}

static void test_file_tensor_not_in_index(void **state)
{
    (void)state;
    const char *d = subdir("unlisted");
    shard(d, "a.safetensors", "x,extra");
    write_text(d, "model.safetensors.index.json", "{\"weight_map\": {\"x\": \"a.safetensors\"}}");
    char msg[2048];
    snprintf(msg, sizeof msg, "%s/model.safetensors.index.json: tensor 'extra' of "
             "%s/a.safetensors is not in the weight_map", d, d);
    expect_error(d, msg);
}

static void test_hostile_index_paths(void **state)
{
    (void)state;
    static const char *const bad[] = {"../a.safetensors", "/etc/passwd", "..", ".",
                                      "sub/a.safetensors", ""};
    const char *d = subdir("hostile");
    shard(d, "a.safetensors", "x");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char index[600], msg[2048];
        snprintf(index, sizeof index, "{\"weight_map\": {\"x\": \"%s\"}}", bad[i]);
        write_text(d, "model.safetensors.index.json", index);
        snprintf(msg, sizeof msg, "%s/model.safetensors.index.json: weight_map entry for 'x' names "
                 "'%s', which is not a plain file name in the directory", d, bad[i]);
        expect_error(d, msg);
    }
}

static void test_index_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *text, *fault;
    } cases[] = {
        {"{\"weight_map\": {\"x\": \"a.safetensors\", \"x\": \"a.safetensors\"}}",
         ":1:41: duplicate object key near '\"x\"'"},
        {"[]", ": top level is not an object"},
        {"{\"metadata\": {}}", ": no \"weight_map\""},
        {"{\"weight_map\": []}", ": \"weight_map\" is not an object"},
        {"{\"weight_map\": {}}", ": weight_map is empty"},
        {"{\"weight_map\": {\"x\": 3}}", ": weight_map entry for 'x' is not a string"},
        {"{\"metadata\": 3, \"weight_map\": {\"x\": \"a.safetensors\"}}", ": \"metadata\" is not an object"},
    };
    const char *d = subdir("badindex");
    shard(d, "a.safetensors", "x");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char msg[2048];
        write_text(d, "model.safetensors.index.json", cases[i].text);
        snprintf(msg, sizeof msg, "%s/model.safetensors.index.json%s", d, cases[i].fault);
        expect_error(d, msg);
    }
}

/* ---- harness --------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/rt_ckpt_XXXXXX");
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return test_rm_rf(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_file),
        cmocka_unit_test(test_dir_single_file),
        cmocka_unit_test(test_dir_without_config),
        cmocka_unit_test(test_dir_shards_without_index),
        cmocka_unit_test(test_sharded_with_index),
        cmocka_unit_test(test_missing_path),
        cmocka_unit_test(test_dir_without_safetensors),
        cmocka_unit_test(test_broken_shard_named),
        cmocka_unit_test(test_tensor_in_two_files),
        cmocka_unit_test(test_tensor_in_two_files_indexed),
        cmocka_unit_test(test_index_names_missing_file),
        cmocka_unit_test(test_index_tensor_not_in_its_file),
        cmocka_unit_test(test_index_tensor_in_other_listed_file),
        cmocka_unit_test(test_file_tensor_not_in_index),
        cmocka_unit_test(test_hostile_index_paths),
        cmocka_unit_test(test_index_malformed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
