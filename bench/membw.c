/* bench/membw.c — the memory-bandwidth ceiling decode is measured against.
 *
 * Reads a buffer much larger than the caches with every thread streaming its
 * own share (decode reads each weight once per token, so read bandwidth is
 * the ceiling), best of several passes.  Prints one JSON line:
 *   {"threads": N, "read_GBps": X, "copy_GBps": Y}
 * copy counts bytes read plus bytes written, as the GPU figures in DESIGN.md do. */
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static size_t n_floats;
static float *buf, *dst;
static int nthreads;
static volatile float sink;

typedef struct { int id; int copy; } Job;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *work(void *arg)
{
    Job *j = arg;
    size_t per = n_floats / (size_t)nthreads, lo = per * (size_t)j->id, hi = lo + per;
    if (j->copy) {
        memcpy(dst + lo, buf + lo, (hi - lo) * sizeof(float));
        return NULL;
    }
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = lo; i + 32 <= hi; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_load_ps(buf + i));
        a1 = _mm256_add_ps(a1, _mm256_load_ps(buf + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_load_ps(buf + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_load_ps(buf + i + 24));
    }
    float out[8];
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    sink += out[0];
    return NULL;
}

static double pass(int copy)
{
    pthread_t th[256];
    Job jobs[256];
    double t0 = now();
    for (int i = 0; i < nthreads; i++) {
        jobs[i] = (Job){i, copy};
        pthread_create(&th[i], NULL, work, &jobs[i]);
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    return now() - t0;
}

int main(int argc, char **argv)
{
    nthreads = argc > 1 ? atoi(argv[1]) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    size_t mb = argc > 2 ? (size_t)atoi(argv[2]) : 1024;
    if (nthreads < 1 || nthreads > 256 || mb < 64) {
        fprintf(stderr, "usage: membw [threads 1..256] [MiB >= 64]\n");
        return 2;
    }
    n_floats = mb << 18;
    if (posix_memalign((void **)&buf, 64, n_floats * 4) || posix_memalign((void **)&dst, 64, n_floats * 4)) {
        fprintf(stderr, "membw: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n_floats; i++)
        buf[i] = (float)(i & 1023), dst[i] = 0;
    double best_r = 1e9, best_c = 1e9;
    for (int r = 0; r < 5; r++) {
        double t = pass(0);
        best_r = t < best_r ? t : best_r;
        t = pass(1);
        best_c = t < best_c ? t : best_c;
    }
    double bytes = (double)n_floats * 4;
    printf("{\"threads\": %d, \"read_GBps\": %.2f, \"copy_GBps\": %.2f}\n", nthreads, bytes / best_r / 1e9,
           2 * bytes / best_c / 1e9);
    free(buf);
    free(dst);
    return 0;
}
