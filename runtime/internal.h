/* runtime/internal.h — shared inside the runtime only. */
#ifndef MODELC_RUNTIME_INTERNAL_H
#define MODELC_RUNTIME_INTERNAL_H

#include "runtime/runtime.h"

/* A fixed set of threads that run one launch at a time: the calling thread
 * takes the first share, workers the rest; rt_pool_run returns when all are
 * done.  Idle workers spin briefly, then sleep on a condition variable. */
typedef struct RtPool RtPool;

RtPool *rt_pool_new(int threads, RtErr *err);
/* Items whose total cost is under RT_POOL_MIN_COST run on the calling thread
 * alone: waking the others would cost more than it saves. */
#define RT_POOL_MIN_COST 32768
void rt_pool_run(RtPool *p, RtKernelFn fn, void **args, int64_t T, int64_t pos0, int64_t total, int64_t grain,
                 int64_t cost);
int rt_pool_threads(const RtPool *p);
void rt_pool_free(RtPool *p);

#endif
