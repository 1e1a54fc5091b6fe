/* pool.c - the thread pool behind abi.h's lk_parallel_fn.
 *
 * A kernel splits its outer loop into chunks fixed by the sizes alone and
 * combines partial results in chunk order, so the pool only has to run every
 * chunk exactly once: workers (and the calling thread) claim chunk numbers
 * from one atomic counter until none are left. How chunks land on threads
 * then changes nothing in the results, which is what makes them bitwise
 * identical for any thread count.
 *
 * One job at a time: the losses of one context may run on different threads
 * at once, and a caller that finds the pool busy runs its chunks inline
 * rather than wait (same results, no deadlock if a task ever calls back in).
 */
#include "runtime/rt.h"

#include <pthread.h>
#include <stdatomic.h>

struct rt_pool {
    int nthreads; /* including the caller */
    int nworkers;
    pthread_t *workers;
    pthread_mutex_t busy; /* held by the thread whose job the pool runs */
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    uint64_t generation; /* bumped for each job; workers wait for a change */
    bool stop;
    int pending; /* workers that have not finished the current job */

    lk_task_fn fn;
    void *arg;
    int64_t nchunks;
    atomic_int_fast64_t next;
};

static void claim_chunks(rt_pool *p)
{
    for (;;) {
        int64_t c = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (c >= p->nchunks)
            return;
        p->fn(p->arg, c);
    }
}

static void *worker_main(void *arg)
{
    rt_pool *p = arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->generation == seen)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        claim_chunks(p);
        pthread_mutex_lock(&p->mu);
        /* The caller waits for every worker to check in, so no worker can
         * still be looking at this job when the next one is posted. */
        if (--p->pending == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

rt_pool *rt_pool_new(int nthreads)
{
    rt_pool *p = sup_calloc(1, sizeof *p);
    p->nthreads = nthreads < 1 ? 1 : nthreads;
    pthread_mutex_init(&p->busy, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->next, 0);
    if (p->nthreads > 1)
        p->workers = sup_calloc((size_t)p->nthreads - 1, sizeof *p->workers);
    for (int i = 0; i < p->nthreads - 1; i++) {
        if (pthread_create(&p->workers[i], NULL, worker_main, p) != 0) {
            rt_pool_free(p);
            return NULL;
        }
        p->nworkers++;
    }
    return p;
}

void rt_pool_free(rt_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nworkers; i++)
        pthread_join(p->workers[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->busy);
    sup_free(p->workers);
    sup_free(p);
}

int rt_pool_threads(const rt_pool *p) { return p ? p->nthreads : 1; }

void rt_pool_parallel(void *pool, lk_task_fn fn, void *ctx, int64_t nchunks)
{
    rt_pool *p = pool;
    if (nchunks <= 0)
        return;
    if (!p || p->nworkers == 0 || nchunks == 1 || pthread_mutex_trylock(&p->busy) != 0) {
        for (int64_t c = 0; c < nchunks; c++)
            fn(ctx, c);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = ctx;
    p->nchunks = nchunks;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    p->pending = p->nworkers;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);

    claim_chunks(p);

    pthread_mutex_lock(&p->mu);
    while (p->pending > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->busy);
}
