/* SPDX-License-Identifier: MIT */
/*
 * work.c - the catalog's own threads: a small pool that runs attaches,
 * refreshes, buildcache listings and the freeing of released archives,
 * so that none of them runs in a thread that answers the kernel. The
 * pool starts on the first job (after the daemon forked), grows to
 * CAT_WORKERS while jobs wait, shrinks back to one thread when idle, and
 * is joined by catalog_free, which first lets it finish every queued job.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sffs/log.h"

#include "catalog_int.h"

struct cat_job {
	struct cat_job *next;
	void (*fn)(struct catalog *c, void *arg);
	void *arg;
};

/* Waits for a job; false when this worker is to end (stopping with
 * nothing queued, or idle for CAT_WORKER_IDLE_S while others run).
 * Caller holds c->wlock. */
static bool wait_job(struct cat_worker *w)
{
	struct catalog *c = w->c;
	struct timespec ts;
	uint64_t until;

	for (;;) {
		if (c->jobs)
			return true;
		if (c->wstop)
			return false;
		until = now_ns() + CAT_WORKER_IDLE_S * 1000000000ull;
		ts.tv_sec = (time_t)(until / 1000000000u);
		ts.tv_nsec = (long)(until % 1000000000u);
		if (pthread_cond_timedwait(&c->wcond, &c->wlock, &ts) ==
			ETIMEDOUT &&
		    !c->jobs && !c->wstop && c->nworkers > 1)
			return false;
	}
}

static void *worker(void *arg)
{
	struct cat_worker *w = arg;
	struct catalog *c = w->c;
	struct cat_job *j;

	pthread_setname_np(pthread_self(), "sffs-catalog");

	pthread_mutex_lock(&c->wlock);
	while (wait_job(w)) {
		j = c->jobs;
		c->jobs = j->next;
		c->njobs--;
		if (!c->jobs)
			c->jobs_tail = NULL;
		c->wbusy++;
		pthread_mutex_unlock(&c->wlock);
		j->fn(c, j->arg);
		free(j);
		pthread_mutex_lock(&c->wlock);
		c->wbusy--;
	}
	c->nworkers--;
	w->exited = true;
	pthread_mutex_unlock(&c->wlock);
	return NULL;
}

/* Another worker when the queued jobs outnumber the idle workers and the
 * pool is not full; a slot whose worker ended is joined and reused.
 * Caller holds c->wlock (an ended worker needs it no more). */
static void maybe_grow(struct catalog *c)
{
	struct cat_worker *w = NULL;

	if (c->nworkers == CAT_WORKERS || c->njobs <= c->nworkers - c->wbusy)
		return;
	for (size_t i = 0; i < CAT_WORKERS && !w; i++)
		if (!c->workers[i].started || c->workers[i].exited)
			w = &c->workers[i];
	if (!w)
		return;
	if (w->started)
		pthread_join(w->th, NULL);
	w->c = c;
	w->started = w->exited = false;
	if (pthread_create(&w->th, NULL, worker, w)) {
		log_warn("catalog: cannot start a worker thread");
		return;
	}
	w->started = true;
	c->nworkers++;
}

int cat_submit(struct catalog *c, void (*fn)(struct catalog *c, void *arg),
	       void *arg)
{
	struct cat_job *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->fn = fn;
	j->arg = arg;
	pthread_mutex_lock(&c->wlock);
	if (c->wstop) {
		pthread_mutex_unlock(&c->wlock);
		free(j);
		return -ECANCELED;
	}
	if (c->jobs_tail)
		c->jobs_tail->next = j;
	else
		c->jobs = j;
	c->jobs_tail = j;
	c->njobs++;
	maybe_grow(c);
	if (!c->nworkers) {
		/* no thread to run it: take it back */
		c->jobs = c->jobs_tail = NULL;
		c->njobs = 0;
		pthread_mutex_unlock(&c->wlock);
		free(j);
		return -EAGAIN;
	}
	pthread_cond_signal(&c->wcond);
	pthread_mutex_unlock(&c->wlock);
	return 0;
}

void cat_work_stop(struct catalog *c)
{
	pthread_mutex_lock(&c->wlock);
	c->wstop = true;
	pthread_cond_broadcast(&c->wcond);
	pthread_mutex_unlock(&c->wlock);
	for (size_t i = 0; i < CAT_WORKERS; i++)
		if (c->workers[i].started)
			pthread_join(c->workers[i].th, NULL);
	memset(c->workers, 0, sizeof(c->workers));
	c->nworkers = 0;
}

bool cat_stopping(struct catalog *c)
{
	bool s;

	pthread_mutex_lock(&c->wlock);
	s = c->wstop;
	pthread_mutex_unlock(&c->wlock);
	return s;
}
