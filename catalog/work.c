/* SPDX-License-Identifier: MIT */
/*
 * work.c - the catalog's own threads: a small pool that runs attaches,
 * refreshes, buildcache listings and the freeing of released archives,
 * so that none of them runs in a thread that answers the kernel. The
 * pool starts on the first job (after the daemon forked) and is joined
 * by catalog_free, which first lets it finish every queued job.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "sffs/log.h"

#include "catalog_int.h"

struct cat_job {
	struct cat_job *next;
	void (*fn)(struct catalog *c, void *arg);
	void *arg;
};

static void *worker(void *arg)
{
	struct catalog *c = arg;
	struct cat_job *j;

	pthread_mutex_lock(&c->wlock);
	for (;;) {
		while (!c->jobs && !c->wstop)
			pthread_cond_wait(&c->wcond, &c->wlock);
		j = c->jobs;
		if (!j)
			break; /* stopping and nothing left */
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
	pthread_mutex_unlock(&c->wlock);
	return NULL;
}

/* Another worker when the queued jobs outnumber the idle workers and the
 * pool is not full. Caller holds c->wlock. */
static void maybe_grow(struct catalog *c)
{
	if (c->nworkers == CAT_WORKERS || c->njobs <= c->nworkers - c->wbusy)
		return;
	if (pthread_create(&c->workers[c->nworkers], NULL, worker, c)) {
		log_warn("catalog: cannot start a worker thread");
		return;
	}
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
	for (size_t i = 0; i < c->nworkers; i++)
		pthread_join(c->workers[i], NULL);
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
