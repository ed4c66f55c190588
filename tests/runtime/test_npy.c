/* tests/runtime/test_npy.c — rt_npy_write_f32 writes NumPy v1.0 files that
 * read back byte for byte (the header parsed here in C), and on failure
 * leaves nothing behind: neither the destination nor the temporary. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/test_util.h"

#include "runtime/runtime.h"

static char dir[64];

typedef struct Npy {
    unsigned char *bytes;
    size_t size;
    size_t data_at;          /* preamble length */
    char header[512];        /* the dict text, padding and '\n' stripped */
    int rank;
    int64_t shape[RT_MAX_RANK];
} Npy;

static unsigned char *slurp(const char *p, size_t *size)
{
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    unsigned char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    assert_int_equal(fclose(f), 0);
    *size = (size_t)n;
    return b;
}

/* Read p and check the preamble; parse 'shape': (...) out of the dict. */
static void read_npy(const char *p, Npy *npy)
{
    npy->bytes = slurp(p, &npy->size);
    const unsigned char *b = npy->bytes;
    assert_true(npy->size >= 10);
    assert_memory_equal(b, "\x93NUMPY\x01\x00", 8);
    size_t hlen = b[8] | (size_t)b[9] << 8;
    npy->data_at = 10 + hlen;
    assert_int_equal(npy->data_at % 64, 0);
    assert_true(npy->size >= npy->data_at);
    assert_int_equal(b[npy->data_at - 1], '\n');
    size_t end = npy->data_at - 1;
    while (end > 10 && b[end - 1] == ' ')
        end--;
    assert_true(end - 10 < sizeof npy->header);
    memcpy(npy->header, b + 10, end - 10);
    npy->header[end - 10] = '\0';

    const char *s = strstr(npy->header, "'shape': (");
    assert_non_null(s);
    s += strlen("'shape': (");
    npy->rank = 0;
    while (*s != ')') {
        char *after;
        long long d = strtoll(s, &after, 10);
        assert_true(after != s);
        assert_true(npy->rank < RT_MAX_RANK);
        npy->shape[npy->rank++] = d;
        s = after;
        if (*s == ',')
            s++;
        if (*s == ' ')
            s++;
    }
}

/* No stray "<name>.tmp.*" in dir. */
static void expect_no_temp(void)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp."))
            fail_msg("temporary left behind: %s", e->d_name);
    closedir(d);
}

static void write_ok(const char *p, const float *data, const int64_t *shape, int rank)
{
    RtErr err = {.msg = ""};
    if (!rt_npy_write_f32(p, data, shape, rank, &err))
        fail_msg("rt_npy_write_f32 failed: %s", err.msg);
}

static void test_write_2d(void **state)
{
    (void)state;
    char p[128];
    snprintf(p, sizeof p, "%s/logits.npy", dir);
    float data[6] = {0.0f, -1.5f, 3.25f, 1e30f, -0.0f, 7.0f};
    int64_t shape[2] = {2, 3};
    write_ok(p, data, shape, 2);

    Npy npy;
    read_npy(p, &npy);
    assert_string_equal(npy.header, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
    assert_int_equal(npy.data_at, 128);   /* 10 + 60-byte dict + newline, padded */
    assert_int_equal(npy.rank, 2);
    assert_int_equal(npy.shape[0], 2);
    assert_int_equal(npy.shape[1], 3);
    assert_int_equal(npy.size, npy.data_at + sizeof data);
    assert_memory_equal(npy.bytes + npy.data_at, data, sizeof data);
    free(npy.bytes);
    expect_no_temp();
}

static void test_write_ranks(void **state)
{
    (void)state;
    static const struct {
        int rank;
        int64_t shape[RT_MAX_RANK];
        const char *text;
    } cases[] = {
        {0, {0}, "()"},
        {1, {5}, "(5,)"},
        {3, {2, 1, 2}, "(2, 1, 2)"},
        {2, {0, 4}, "(0, 4)"},
        {2, {128000, 1}, "(128000, 1)"},
        {8, {1, 1, 1, 1, 1, 1, 1, 3}, "(1, 1, 1, 1, 1, 1, 1, 3)"},
    };
    float data[128000];
    for (int i = 0; i < 128000; i++)
        data[i] = (float)i * 0.5f;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char p[128], want[256];
        snprintf(p, sizeof p, "%s/r%zu.npy", dir, k);
        write_ok(p, data, cases[k].shape, cases[k].rank);
        Npy npy;
        read_npy(p, &npy);
        snprintf(want, sizeof want, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }",
                 cases[k].text);
        assert_string_equal(npy.header, want);
        assert_int_equal(npy.rank, cases[k].rank);
        size_t numel = 1;
        for (int i = 0; i < cases[k].rank; i++) {
            assert_int_equal(npy.shape[i], cases[k].shape[i]);
            numel *= (size_t)cases[k].shape[i];
        }
        assert_int_equal(npy.size, npy.data_at + 4 * numel);
        assert_memory_equal(npy.bytes + npy.data_at, data, 4 * numel);
        free(npy.bytes);
    }
    expect_no_temp();
}

static void test_overwrite(void **state)
{
    (void)state;
    char p[128];
    snprintf(p, sizeof p, "%s/again.npy", dir);
    float a[4] = {1, 2, 3, 4}, b[2] = {9, 8};
    int64_t sa[1] = {4}, sb[1] = {2};
    write_ok(p, a, sa, 1);
    write_ok(p, b, sb, 1);
    Npy npy;
    read_npy(p, &npy);
    assert_int_equal(npy.shape[0], 2);
    assert_int_equal(npy.size, npy.data_at + sizeof b);
    assert_memory_equal(npy.bytes + npy.data_at, b, sizeof b);
    free(npy.bytes);
}

static void test_missing_dir_leaves_nothing(void **state)
{
    (void)state;
    char p[128], want[512];
    snprintf(p, sizeof p, "%s/no/such/dir/out.npy", dir);
    float x = 1;
    int64_t shape[1] = {1};
    RtErr err = {.msg = ""};
    assert_false(rt_npy_write_f32(p, &x, shape, 1, &err));
    snprintf(want, sizeof want, "%s: cannot create %s.tmp.%ld: No such file or directory", p, p,
             (long)getpid());
    assert_string_equal(err.msg, want);
    struct stat sb;
    assert_int_not_equal(stat(p, &sb), 0);
    expect_no_temp();
}

static void test_rename_failure_removes_temp(void **state)
{
    (void)state;
    /* the destination is a non-empty directory: rename fails after the write */
    char p[128], inner[160];
    snprintf(p, sizeof p, "%s/occupied.npy", dir);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(inner, sizeof inner, "%s/keep", p);
    FILE *f = fopen(inner, "w");
    assert_non_null(f);
    assert_int_equal(fclose(f), 0);

    float x = 1;
    int64_t shape[1] = {1};
    RtErr err = {.msg = ""};
    assert_false(rt_npy_write_f32(p, &x, shape, 1, &err));
    assert_non_null(strstr(err.msg, "cannot rename"));
    assert_true(strncmp(err.msg, p, strlen(p)) == 0);
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    expect_no_temp();
}

static void test_bad_shape(void **state)
{
    (void)state;
    char p[128], want[256];
    snprintf(p, sizeof p, "%s/bad.npy", dir);
    float x = 1;
    int64_t neg[2] = {2, -1}, huge[2] = {INT64_C(1) << 40, INT64_C(1) << 40};
    int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    RtErr err = {.msg = ""};

    assert_false(rt_npy_write_f32(p, &x, neg, 2, &err));
    snprintf(want, sizeof want, "%s: dimension 1 is negative (-1)", p);
    assert_string_equal(err.msg, want);

    assert_false(rt_npy_write_f32(p, &x, huge, 2, &err));
    snprintf(want, sizeof want, "%s: array size overflows", p);
    assert_string_equal(err.msg, want);

    assert_false(rt_npy_write_f32(p, &x, nine, 9, &err));
    snprintf(want, sizeof want, "%s: rank 9 is outside 0..8", p);
    assert_string_equal(err.msg, want);

    struct stat sb;
    assert_int_not_equal(stat(p, &sb), 0);
    expect_no_temp();
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rt_npy_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return test_rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_2d),
        cmocka_unit_test(test_write_ranks),
        cmocka_unit_test(test_overwrite),
        cmocka_unit_test(test_missing_dir_leaves_nothing),
        cmocka_unit_test(test_rename_failure_removes_temp),
        cmocka_unit_test(test_bad_shape),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
