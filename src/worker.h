/*
 * A helper thread that runs one job at a time for a log walk: the next
 * read of the log (log_ahead.c), or the start of the segments' write-back
 * (recover.c).  The owner posts a message; the thread runs fn(arg, msg)
 * for it.  A message posted while one waits replaces it, so a thread that
 * falls behind runs only the newest.
 */
#ifndef RVM_WORKER_H
#define RVM_WORKER_H

#include <pthread.h>
#include <stdbool.h>

struct worker {
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool running, busy, stop;
    void *msg;                  /* posted, not yet taken */
    void (*fn)(void *arg, void *msg);
    void *arg;
};

/* Start the thread (w zeroed before), called name (at most 15 chars, as
 * top -H shows it); 0, or -errno and w stays unused. */
int worker_start(struct worker *w, const char *name, void (*fn)(void *arg, void *msg),
                 void *arg);

/* Give the thread msg; returns the message it replaced (never taken, the
 * caller's to free) or NULL.  Only after worker_start succeeded. */
void *worker_post(struct worker *w, void *msg);

/* Until no message waits and no job runs.  Memory the job wrote is
 * visible to the caller afterwards.  A no-op on an unstarted worker. */
void worker_wait(struct worker *w);

/* Wait for the job running, stop and join the thread; returns a message
 * never taken (the caller's to free) or NULL.  A no-op, NULL, on an
 * unstarted worker.  Thread-safety: the owner's thread only, as post. */
void *worker_stop(struct worker *w);

#endif
