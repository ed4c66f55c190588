/* tests/fuzz/fuzz_common.h — shared by the libFuzzer targets in tests/fuzz/.
 *
 * The readers take paths, so an input is written to a file in a private
 * directory on tmpfs (/dev/shm; $FUZZ_WORKDIR when set, which
 * tests/fuzz/run.sh uses so that it can remove the directory even after a
 * crash; else a mkdtemp directory removed at exit).  FUZZ_CHECK turns a
 * broken promise of an API (a count that disagrees with its items, a
 * failure without a message) into an abort, so that libFuzzer reports it
 * like a crash.  The tokenizer workout is shared by fuzz_tokenizer and
 * fuzz_gguf. */
#ifndef MODELC_FUZZ_COMMON_H
#define MODELC_FUZZ_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/runtime.h"
#include "runtime/tokenizer.h"

#define FUZZ_CHECK(cond)                                                                                            \
    do {                                                                                                            \
        if (!(cond)) {                                                                                              \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond);                           \
            abort();                                                                                                \
        }                                                                                                           \
    } while (0)

/* FUZZ_VERBOSE=1 in the environment prints why each input was rejected
 * (to see what the seeds reach: build-fuzz/fuzz_gguf -runs=0 tests/fuzz/corpus/gguf). */
static int fz_verbose(void)
{
    static int v = -1;
    if (v < 0)
        v = getenv("FUZZ_VERBOSE") && *getenv("FUZZ_VERBOSE") && *getenv("FUZZ_VERBOSE") != '0';
    return v;
}

/* A failed call must say why. */
#define FUZZ_CHECK_ERR(err)                                                                                         \
    do {                                                                                                            \
        FUZZ_CHECK((err).msg[0] != '\0' && memchr((err).msg, '\0', sizeof (err).msg) != NULL);                       \
        if (fz_verbose())                                                                                           \
            fprintf(stderr, "rejected: %s\n", (err).msg);                                                           \
    } while (0)

static char fz_dir_buf[512];

static void fz_cleanup(void)
{
    char p[600];
    static const char *const names[] = {"model.gguf", "model.safetensors", "tokenizer.json", "tokenizer_config.json"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", fz_dir_buf, names[i]);
        unlink(p);
    }
    rmdir(fz_dir_buf);
}

static const char *fz_dir(void)
{
    if (fz_dir_buf[0])
        return fz_dir_buf;
    const char *w = getenv("FUZZ_WORKDIR");
    if (w && *w) {
        snprintf(fz_dir_buf, sizeof fz_dir_buf, "%s", w);
        if (mkdir(fz_dir_buf, 0700) != 0 && errno != EEXIST) {
            perror(fz_dir_buf);
            abort();
        }
        return fz_dir_buf;
    }
    struct stat sb;
    const char *base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : getenv("TMPDIR");
    snprintf(fz_dir_buf, sizeof fz_dir_buf, "%s/modelc-fuzz-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(fz_dir_buf)) {
        perror(fz_dir_buf);
        abort();
    }
    atexit(fz_cleanup);
    return fz_dir_buf;
}

/* Write bytes to <dir>/name (replacing it); the path, in a static buffer per slot. */
static const char *fz_write(int slot, const char *name, const void *data, size_t n)
{
    static char paths[4][600];
    char *p = paths[slot];
    snprintf(p, sizeof paths[slot], "%s/%s", fz_dir(), name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(p);
        abort();
    }
    const char *c = data;
    while (n > 0) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            perror(p);
            abort();
        }
        c += k;
        n -= (size_t)k;
    }
    close(fd);
    return p;
}

static void fz_remove(const char *name)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", fz_dir(), name);
    unlink(p);
}

/* Reading every byte makes ASan check the whole range (and a bad pointer fault). */
static volatile unsigned char fz_sink;
static void fz_touch(const void *p, size_t n)
{
    const unsigned char *b = p;
    unsigned char x = 0;
    for (size_t i = 0; i < n; i++)
        x ^= b[i];
    fz_sink = x;
}

/* A tensor as the runtime promises it: rank in range, dims >= 0 with the
 * product numel, and nbytes that of numel values of its dtype. */
static void fz_check_tensor(const RtTensor *t)
{
    FUZZ_CHECK(t && t->name);
    FUZZ_CHECK(t->rank >= 0 && t->rank <= RT_MAX_RANK);
    FUZZ_CHECK((unsigned)t->dtype < RT_DTYPE_COUNT);
    int64_t numel = 1;
    for (int i = 0; i < t->rank; i++) {
        FUZZ_CHECK(t->shape[i] >= 0);
        FUZZ_CHECK(!__builtin_mul_overflow(numel, t->shape[i], &numel));
    }
    FUZZ_CHECK(numel == t->numel);
    int values, bytes;
    if (rt_dtype_block(t->dtype, &values, &bytes))
        FUZZ_CHECK(t->rank >= 1 && t->shape[t->rank - 1] % values == 0 &&
                   t->nbytes == (size_t)(numel / values) * (size_t)bytes);
    else
        FUZZ_CHECK(t->nbytes == (size_t)numel * rt_dtype_size(t->dtype));
    FUZZ_CHECK(t->nbytes == 0 || t->data);
    fz_touch(t->name, strlen(t->name));
    fz_touch(t->data, t->nbytes);
}

/* Encode, decode (pieces through the UTF-8 stream), look pieces back up. */
static void fz_tok_text(const RtTokenizer *t, const char *text, size_t len, bool bos, bool special)
{
    RtErr err = {{0}};
    int64_t n = -1;
    int32_t *ids = rt_tok_encode(t, text, len, bos, special, &n, &err);
    if (!ids) {
        FUZZ_CHECK_ERR(err);
        return;
    }
    FUZZ_CHECK(n >= 0);
    int64_t vocab = rt_tok_vocab(t);
    RtUtf8Stream st = {0};
    char out[RT_UTF8_STREAM_MAX(64)];
    for (int64_t i = 0; i < n; i++) {
        FUZZ_CHECK(ids[i] >= 0 && ids[i] < vocab);
        size_t plen = 0;
        const char *piece = rt_tok_piece(t, ids[i], &plen);
        FUZZ_CHECK(piece != NULL);
        fz_touch(piece, plen);
        (void)rt_tok_is_eog(t, ids[i]);
        for (size_t off = 0; off < plen; off += 64) {
            size_t k = plen - off < 64 ? plen - off : 64;
            size_t w = rt_utf8_stream(&st, piece + off, k, out, sizeof out);
            FUZZ_CHECK(w <= sizeof out);
        }
        (void)rt_tok_find(t, piece, plen);
    }
    size_t w = rt_utf8_flush(&st, out, sizeof out);
    FUZZ_CHECK(w <= 3);
    free(ids);
}

static void fz_tok_workout(const RtTokenizer *t, const uint8_t *data, size_t size)
{
    static const char fixed[] = "Hello, world! caf\xc3\xa9 \xe2\x96\x81x <|im_start|>user\n12345 it's\t\r\n  "
                                "\xf0\x9f\x98\x80 \xff\xfe <s></s><|endoftext|>";
    int64_t vocab = rt_tok_vocab(t);
    FUZZ_CHECK(vocab >= 0);
    FUZZ_CHECK(rt_tok_bos(t) >= -1 && rt_tok_bos(t) < vocab);
    FUZZ_CHECK(rt_tok_eos(t) >= -1 && rt_tok_eos(t) < vocab);
    fz_tok_text(t, fixed, sizeof fixed - 1, true, true);
    fz_tok_text(t, fixed, sizeof fixed - 1, false, false);
    fz_tok_text(t, "", 0, true, false);
    /* a slice of the input as text: its last 256 bytes */
    size_t k = size < 256 ? size : 256;
    fz_tok_text(t, (const char *)data + size - k, k, true, (size & 1) != 0);
    size_t len;
    FUZZ_CHECK(rt_tok_piece(t, -1, &len) == NULL && len == 0);
    FUZZ_CHECK(rt_tok_piece(t, (int32_t)(vocab > INT32_MAX ? INT32_MAX : vocab), &len) == NULL);
    for (int64_t i = 0; i < vocab && i < 64; i++) {
        const char *p = rt_tok_piece(t, (int32_t)i, &len);
        if (p)
            fz_touch(p, len);
    }
    if (rt_tok_chat_format(t) != RT_CHAT_NONE) {
        RtErr err = {{0}};
        char *prompt = rt_tok_chat_prompt(t, NULL, "Hi!", &err);
        FUZZ_CHECK(prompt != NULL);
        fz_tok_text(t, prompt, strlen(prompt), true, true);
        free(prompt);
        prompt = rt_tok_chat_prompt(t, "sys", NULL, &err);
        FUZZ_CHECK(prompt != NULL);
        free(prompt);
    }
}

#endif
