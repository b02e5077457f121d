/*
 * aiowait.h: one nng aio and a condition variable to wait on it.
 *
 * req0 gives up a request whose receive is cancelled or times out, so
 * the agent never slices a receive with NNG_OPT_RECVTIMEO: one aio
 * carries the whole request timeout and the caller waits on it in short
 * slices, cancelling it once when it is asked to stop.
 */
#ifndef BS_AIOWAIT_H
#define BS_AIOWAIT_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdbool.h>

typedef struct {
	nng_aio *aio;        /* the operation waited on */
	pthread_mutex_t mtx; /* guards done */
	pthread_cond_t cv;   /* signalled when aio completes */
	bool done;           /* aio completed and was not waited on yet */
} aiowait;

/* aiowait_init allocates the aio; returns 0 or an nng error. */
int aiowait_init(aiowait *w);
/* aiowait_fini frees what aiowait_init made; safe on a zeroed struct. */
void aiowait_fini(aiowait *w);
/*
 * aiowait_wait waits for the operation started on w->aio to complete.
 * Every slice it asks stop(arg); once that is true it cancels the aio.
 */
void aiowait_wait(aiowait *w, bool (*stop)(void *), void *arg);

#endif
