/* SEOFP kernels, threading: the optional second thread for batch-1 products (seofp.h
 * seofp_set_threads). */
#include "seofp_internal.h"

/* ------------------------------------------------------------ optional second thread (4.8) */
/* A batch-1 product can be split by row blocks over two threads (seofp_set_threads(2)): the
 * second one spins on a sequence number for a while after each job, then sleeps on a condition
 * variable. Rows are computed exactly as on one thread, so the result is bit-identical. One
 * caller at a time uses the pool; a concurrent caller (another Python thread, the GIL released)
 * simply runs on its own thread. */
#define POOL_MIN_WEIGHTS (64 * 1024) /* smaller products are not worth a handoff */
#define POOL_SPINS 50000             /* about a millisecond of spinning before sleeping */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned seq, done; /* posted and finished job numbers (atomics) */
    int started, busy;  /* the worker exists; a caller owns the pool (atomic) */
    blocks_job job;
    int b0, b1;
} g_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, {0}, 0, 0};
static int g_threads = 1;

static inline void cpu_relax(void) {
#if SEOFP_HAVE_AVX2_PATH
    _mm_pause();
#endif
}

static void *pool_main(void *arg) {
    (void)arg;
    /* the last finished job, not the last posted one: a job posted before this thread first
     * runs is still pending and must be run */
    unsigned seen = __atomic_load_n(&g_pool.done, __ATOMIC_ACQUIRE);
    for (;;) {
        unsigned s;
        int spins = 0;
        while ((s = __atomic_load_n(&g_pool.seq, __ATOMIC_ACQUIRE)) == seen) {
            if (++spins < POOL_SPINS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&g_pool.mu);
            while ((s = __atomic_load_n(&g_pool.seq, __ATOMIC_ACQUIRE)) == seen)
                pthread_cond_wait(&g_pool.cv, &g_pool.mu);
            pthread_mutex_unlock(&g_pool.mu);
            break;
        }
        seen = s;
        blocks_run(&g_pool.job, g_pool.b0, g_pool.b1);
        __atomic_store_n(&g_pool.done, s, __ATOMIC_RELEASE);
    }
    return NULL;
}

/* a forked child has no worker thread: start afresh there */
static void pool_atfork_child(void) {
    pthread_mutex_init(&g_pool.mu, NULL);
    pthread_cond_init(&g_pool.cv, NULL);
    g_pool.seq = g_pool.done = 0;
    g_pool.started = g_pool.busy = 0;
}

static int pool_start(void) {
    if (g_pool.started) return 1;
    static int atfork_set = 0;
    if (!atfork_set && pthread_atfork(NULL, NULL, pool_atfork_child) == 0) atfork_set = 1;
    pthread_t tid;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int ok = pthread_create(&tid, &attr, pool_main, NULL) == 0;
    pthread_attr_destroy(&attr);
    g_pool.started = ok;
    return ok;
}

int seofp_set_threads(int n) {
    if (n < 1 || n > 2) return SEOFP_EARG;
    if (n == 2 && !pool_start()) return SEOFP_EARG;
    g_threads = n;
    return 0;
}

int seofp_threads(void) { return g_threads; }

/* blocks [0, nb) of a batch-1 job, split over the two threads when the pool is free */
SEOFP_INTERNAL void blocks_run_split(const blocks_job *jb, int nblocks) {
    if (g_threads < 2 || !g_pool.started ||
        (size_t)nblocks * 4 * (size_t)jb->w->cols_pad < POOL_MIN_WEIGHTS ||
        __atomic_exchange_n(&g_pool.busy, 1, __ATOMIC_ACQUIRE)) {
        blocks_run(jb, 0, nblocks);
        return;
    }
    const int mid = nblocks / 2;
    g_pool.job = *jb;
    g_pool.b0 = mid;
    g_pool.b1 = nblocks;
    const unsigned s = g_pool.seq + 1; /* only the pool's owner writes seq */
    __atomic_store_n(&g_pool.seq, s, __ATOMIC_RELEASE);
    pthread_mutex_lock(&g_pool.mu); /* wakes a sleeping worker; no lost wake-up */
    pthread_cond_signal(&g_pool.cv);
    pthread_mutex_unlock(&g_pool.mu);
    blocks_run(jb, 0, mid);
    for (int spins = 0; __atomic_load_n(&g_pool.done, __ATOMIC_ACQUIRE) != s; spins++) {
        if (spins < 1 << 16) cpu_relax();
        else sched_yield(); /* the worker is waiting for a core */
    }
    __atomic_store_n(&g_pool.busy, 0, __ATOMIC_RELEASE);
}
