/* runtime/pool.c — the thread pool kernels run on (see internal.h).
 *
 * A launch's work items [0, total) are cut into one contiguous share per
 * thread, each a multiple of grain (the last takes the remainder), so a
 * kernel's vector loops see aligned ranges.  Shares depend only on total and
 * the thread count, never on timing. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "runtime/internal.h"

struct RtPool {
    int n;
    pthread_t *th;
    atomic_uint gen;
    atomic_int pending;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool quit;
    /* the current launch */
    RtKernelFn fn;
    void **args;
    int64_t T, pos0, total, grain;
};

typedef struct Worker {
    RtPool *p;
    int index;
} Worker;

static void share(const RtPool *p, int i, int64_t *lo, int64_t *hi)
{
    int64_t units = (p->total + p->grain - 1) / p->grain;
    int64_t per = (units + p->n - 1) / p->n;
    int64_t a = (int64_t)i * per * p->grain, b = a + per * p->grain;
    *lo = a < p->total ? a : p->total;
    *hi = b < p->total ? b : p->total;
}

static void run_share(RtPool *p, int i)
{
    int64_t lo, hi;
    share(p, i, &lo, &hi);
    if (lo < hi)
        p->fn(p->args, p->T, p->pos0, lo, hi);
}

static void *worker(void *arg)
{
    Worker *w = arg;
    RtPool *p = w->p;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen && spins < 20000) {
            spins++;
            if (spins > 2000)
                sched_yield();
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen && !p->quit)
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        seen = g;
        if (p->quit)
            break;
        run_share(p, w->index);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel);
    }
    free(w);
    return NULL;
}

RtPool *rt_pool_new(int threads, RtErr *err)
{
    RtPool *p = calloc(1, sizeof *p);
    if (!p) {
        rt_fail(err, "out of memory creating the thread pool");
        return NULL;
    }
    p->n = threads < 1 ? 1 : threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->th = calloc((size_t)p->n, sizeof *p->th);
    if (!p->th) {
        free(p);
        rt_fail(err, "out of memory creating the thread pool");
        return NULL;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 16u << 20);   /* attention keeps its scores on the stack */
    for (int i = 1; i < p->n; i++) {
        Worker *w = malloc(sizeof *w);
        if (!w || pthread_create(&p->th[i], &attr, worker, w ? (w->p = p, w->index = i, w) : NULL)) {
            free(w);
            p->n = i;
            pthread_attr_destroy(&attr);
            rt_pool_free(p);
            rt_fail(err, "cannot start thread %d of the pool", i);
            return NULL;
        }
    }
    pthread_attr_destroy(&attr);
    return p;
}

int rt_pool_threads(const RtPool *p)
{
    return p->n;
}

void rt_pool_run(RtPool *p, RtKernelFn fn, void **args, int64_t T, int64_t pos0, int64_t total, int64_t grain,
                 int64_t cost)
{
    if (total <= 0)
        return;
    p->fn = fn;
    p->args = args;
    p->T = T;
    p->pos0 = pos0;
    p->total = total;
    p->grain = grain < 1 ? 1 : grain;
    if (p->n == 1 || total <= p->grain || cost < RT_POOL_MIN_COST) {
        fn(args, T, pos0, 0, total);
        return;
    }
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    run_share(p, 0);
    /* spin briefly, then yield: on a loaded machine the workers may need our core */
    for (int spins = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; spins++)
        if (spins > 1000)
            sched_yield();
}

void rt_pool_free(RtPool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = true;
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->th);
    free(p);
}
