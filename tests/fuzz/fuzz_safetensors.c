/* tests/fuzz/fuzz_safetensors.c — libFuzzer target: .safetensors files.
 *
 * The input is written to <tmpfs dir>/model.safetensors and opened with
 * rt_st_open; what opens is walked: every tensor checked against the
 * promises of runtime.h (fuzz_common.h) and every byte of its data read,
 * each found again by name (rt_st_find must hand back that tensor), the
 * data regions in order without overlap, metadata read.  Then the same file
 * goes through rt_ckpt_open, the way --weights reads it (a GGUF magic sends
 * it to the GGUF reader: fine, that is what modelc does too). */
#include "tests/fuzz/fuzz_common.h"

static const char *const meta_keys[] = {"format", "note", "", "__metadata__", "w"};

static void walk_st(const RtSafetensors *st)
{
    int n = rt_st_count(st);
    FUZZ_CHECK(n >= 0 && (unsigned)n <= RT_MAX_TENSORS);
    const char *end = NULL;
    for (int i = 0; i < n; i++) {
        const RtTensor *t = rt_st_tensor(st, i);
        fz_check_tensor(t);
        FUZZ_CHECK(rt_st_find(st, t->name) == t);
        /* kept in data order, tiling the data region */
        const char *d = t->data;
        if (end && t->nbytes)
            FUZZ_CHECK(d == end);
        if (t->nbytes)
            end = d + t->nbytes;
    }
    FUZZ_CHECK(rt_st_tensor(st, -1) == NULL && rt_st_tensor(st, n) == NULL);
    for (size_t k = 0; k < sizeof meta_keys / sizeof meta_keys[0]; k++) {
        const char *v = rt_st_metadata(st, meta_keys[k]);
        if (v)
            fz_touch(v, strlen(v) + 1);
    }
    FUZZ_CHECK(rt_st_find(st, "") == NULL || rt_st_find(st, "")->name[0] == '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fz_write(0, "model.safetensors", data, size);
    RtSafetensors *st = NULL;
    RtErr err = {.msg = ""};
    if (rt_st_open(path, &st, &err)) {
        FUZZ_CHECK(st != NULL);
        walk_st(st);
        rt_st_close(st);
    } else {
        FUZZ_CHECK_ERR(err);
    }

    RtCheckpoint *c = NULL;
    RtErr err2 = {.msg = ""};
    if (!rt_ckpt_open(path, &c, &err2)) {
        FUZZ_CHECK(c == NULL);
        FUZZ_CHECK_ERR(err2);
        return 0;
    }
    int n = rt_ckpt_count(c);
    for (int i = 0; i < n; i++) {
        const RtTensor *t = rt_ckpt_tensor(c, i);
        fz_check_tensor(t);
        FUZZ_CHECK(rt_ckpt_find(c, t->name) != NULL);
    }
    FUZZ_CHECK(rt_ckpt_config_path(c) == NULL);   /* a lone file: no config.json beside it in our directory */
    rt_ckpt_close(c);
    return 0;
}
