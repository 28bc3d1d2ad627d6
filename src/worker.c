/*
 * The helper thread of worker.h.
 */
#include "worker.h"

static void *worker_main(void *p)
{
    struct worker *w = p;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->msg && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->stop)
            break;
        void *msg = w->msg;
        w->msg = NULL;
        w->busy = true;
        pthread_mutex_unlock(&w->mu);
        w->fn(w->arg, msg);
        pthread_mutex_lock(&w->mu);
        w->busy = false;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int worker_start(struct worker *w, const char *name, void (*fn)(void *arg, void *msg),
                 void *arg)
{
    w->fn = fn;
    w->arg = arg;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    int rc = pthread_create(&w->thr, NULL, worker_main, w);
    if (rc != 0) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        return -rc;
    }
    w->running = true;
    pthread_setname_np(w->thr, name);
    return 0;
}

void *worker_post(struct worker *w, void *msg)
{
    pthread_mutex_lock(&w->mu);
    void *old = w->msg;
    w->msg = msg;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return old;
}

void worker_wait(struct worker *w)
{
    if (!w->running)
        return;
    pthread_mutex_lock(&w->mu);
    while (w->msg || w->busy)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

void *worker_stop(struct worker *w)
{
    if (!w->running)
        return NULL;
    pthread_mutex_lock(&w->mu);
    while (w->busy)
        pthread_cond_wait(&w->cv, &w->mu);
    void *left = w->msg;
    w->msg = NULL;
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thr, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    w->running = false;
    return left;
}
