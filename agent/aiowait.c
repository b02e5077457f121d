/* aiowait.c: see aiowait.h. */
#include "aiowait.h"

#include <time.h>

#include "platform.h"

#define WAIT_SLICE_MS 100

static void
done_cb(void *arg)
{
	aiowait *w = arg;

	pthread_mutex_lock(&w->mtx);
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mtx);
}

int
aiowait_init(aiowait *w)
{
	int rv;

	w->done = false;
	pthread_mutex_init(&w->mtx, NULL);
	pthread_cond_init(&w->cv, NULL);
	if ((rv = nng_aio_alloc(&w->aio, done_cb, w)) != 0) {
		w->aio = NULL;
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mtx);
	}
	return rv;
}

void
aiowait_fini(aiowait *w)
{
	if (w->aio == NULL)
		return;
	nng_aio_free(w->aio);
	w->aio = NULL;
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mtx);
}

void
aiowait_wait(aiowait *w, bool (*stop)(void *), void *arg)
{
	bool cancelled = false;

	pthread_mutex_lock(&w->mtx);
	while (!w->done) {
		/* pthread_cond_timedwait takes a wall-clock deadline. */
		int64_t end = plat_wall_ms() + WAIT_SLICE_MS;
		struct timespec ts
		    = {(time_t) (end / 1000), (long) (end % 1000) * 1000000};
		pthread_cond_timedwait(&w->cv, &w->mtx, &ts);
		if (!cancelled && !w->done && stop(arg)) {
			pthread_mutex_unlock(&w->mtx);
			nng_aio_cancel(w->aio);
			pthread_mutex_lock(&w->mtx);
			cancelled = true;
		}
	}
	w->done = false;
	pthread_mutex_unlock(&w->mtx);
}
