/*
 * metrics_test.c: tests of hub/metrics.c: the histogram's cumulative
 * buckets, counters, the gauge of connected agents, the text format, and
 * updates from several threads at once.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "testutil.h"

/*
 * value finds the sample line that starts with "name " (name includes
 * its labels) and returns its value; -1 when there is none.
 */
static double
value(const char *text, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = text; p != NULL && *p != '\0';) {
		if (!strncmp(p, name, n) && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return -1;
}

/* lines_valid checks every line: a comment or "name{labels} value". */
static int
lines_valid(const char *text)
{
	const char *p = text;

	while (*p != '\0') {
		const char *end = strchr(p, '\n'), *sp;
		if (end == NULL)
			return 0; /* the last line must end too */
		if (*p != '#') {
			sp = memchr(p, ' ', (size_t) (end - p));
			if (sp == NULL || sp == p || sp + 1 == end)
				return 0;
			if (memchr(sp + 1, ' ', (size_t) (end - sp - 1)))
				return 0;
		}
		p = end + 1;
	}
	return 1;
}

static void
test_histogram(void)
{
	strbuf b = {0};
	const char *h = "branchsync_hub_batch_apply_seconds";
	char name[128];

	metrics_init();
	metrics_observe_apply(0.001); /* le 0.005 */
	metrics_observe_apply(0.005); /* le 0.005: bounds are inclusive */
	metrics_observe_apply(0.02);  /* le 0.025 */
	metrics_observe_apply(3);     /* le 5 */
	metrics_observe_apply(42);    /* only +Inf */
	metrics_observe_apply(-1);    /* clock oddity: counted as 0 */
	metrics_render(&b);
	CHECK(b.p != NULL && lines_valid(b.p));
	CHECK_STR(
	    b.p, "# TYPE branchsync_hub_batch_apply_seconds histogram\n");
	snprintf(name, sizeof name, "%s_bucket{le=\"0.005\"}", h);
	CHECK(value(b.p, name) == 3);
	snprintf(name, sizeof name, "%s_bucket{le=\"0.01\"}", h);
	CHECK(value(b.p, name) == 3);
	snprintf(name, sizeof name, "%s_bucket{le=\"0.025\"}", h);
	CHECK(value(b.p, name) == 4);
	snprintf(name, sizeof name, "%s_bucket{le=\"2.5\"}", h);
	CHECK(value(b.p, name) == 4);
	snprintf(name, sizeof name, "%s_bucket{le=\"5\"}", h);
	CHECK(value(b.p, name) == 5);
	snprintf(name, sizeof name, "%s_bucket{le=\"10\"}", h);
	CHECK(value(b.p, name) == 5);
	snprintf(name, sizeof name, "%s_bucket{le=\"+Inf\"}", h);
	CHECK(value(b.p, name) == 6);
	snprintf(name, sizeof name, "%s_count", h);
	CHECK(value(b.p, name) == 6);
	snprintf(name, sizeof name, "%s_sum", h);
	CHECK(value(b.p, name) > 45.025 && value(b.p, name) < 45.027);
	/* Buckets in increasing order, +Inf last, then _sum and _count. */
	CHECK(strstr(b.p, "le=\"0.005\"") < strstr(b.p, "le=\"0.01\""));
	CHECK(strstr(b.p, "le=\"10\"") < strstr(b.p, "le=\"+Inf\""));
	CHECK(strstr(b.p, "le=\"+Inf\"") < strstr(b.p, "_sum "));
	CHECK(strstr(b.p, "_sum ") < strstr(b.p, "_count "));
	strbuf_fini(&b);
}

static void
test_counters(void)
{
	strbuf b = {0};

	metrics_init();
	metrics_render(&b);
	CHECK(value(b.p, "branchsync_hub_apply_errors_total") == 0);
	CHECK(value(b.p, "branchsync_hub_batch_apply_seconds_count") == 0);
	CHECK(value(b.p,
	          "branchsync_hub_batch_apply_seconds_bucket{le=\"+Inf\"}")
	    == 0);
	strbuf_reset(&b);

	metrics_apply_error();
	metrics_apply_error();
	metrics_pg_error();
	metrics_auth_failure();
	metrics_auth_failure();
	metrics_auth_failure();
	metrics_changes_sent(500);
	metrics_changes_sent(0);
	metrics_changes_sent(7);
	metrics_agents_delta(1);
	metrics_agents_delta(1);
	metrics_agents_delta(-1);
	metrics_render(&b);
	CHECK(lines_valid(b.p));
	CHECK(value(b.p, "branchsync_hub_apply_errors_total") == 2);
	CHECK(value(b.p, "branchsync_hub_postgres_errors_total") == 1);
	CHECK(value(b.p, "branchsync_hub_auth_failures_total") == 3);
	CHECK(value(b.p, "branchsync_hub_changes_sent_total") == 507);
	CHECK(value(b.p, "branchsync_hub_connected_agents") == 1);
	CHECK(value(b.p, "branchsync_hub_info{version=\"" BS_VERSION "\"}")
	    == 1);
	CHECK_STR(b.p, "# TYPE branchsync_hub_apply_errors_total counter\n");
	CHECK_STR(b.p, "# TYPE branchsync_hub_connected_agents gauge\n");
	CHECK_STR(b.p, "# TYPE branchsync_hub_info gauge\n");
	CHECK_STR(b.p, "# HELP branchsync_hub_changes_sent_total ");
	strbuf_reset(&b);

	/* A removal without its addition does not go below zero. */
	metrics_agents_delta(-1);
	metrics_agents_delta(-1);
	metrics_render(&b);
	CHECK(value(b.p, "branchsync_hub_connected_agents") == 0);
	strbuf_reset(&b);

	/* Appends: a caller may render other metrics first. */
	strbuf_printf(&b, "# before\n");
	metrics_render(&b);
	CHECK(!strncmp(b.p, "# before\n# HELP ", 16));
	strbuf_fini(&b);
	metrics_fini();
}

#define NTHREADS 4
#define NITER    20000

static void *
hammer(void *arg)
{
	(void) arg;
	for (int i = 0; i < NITER; i++) {
		metrics_observe_apply(0.03);
		metrics_changes_sent(2);
		metrics_agents_delta(1);
		metrics_agents_delta(-1);
		metrics_pg_error();
	}
	return NULL;
}

static void
test_threads(void)
{
	pthread_t t[NTHREADS];
	strbuf b = {0};

	metrics_init();
	for (int i = 0; i < NTHREADS; i++)
		CHECK(pthread_create(&t[i], NULL, hammer, NULL) == 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	metrics_render(&b);
	CHECK(value(b.p, "branchsync_hub_batch_apply_seconds_count")
	    == NTHREADS * NITER);
	CHECK(value(b.p,
	          "branchsync_hub_batch_apply_seconds_bucket{le=\"0.05\"}")
	    == NTHREADS * NITER);
	CHECK(value(b.p,
	          "branchsync_hub_batch_apply_seconds_bucket{le=\"0.025\"}")
	    == 0);
	CHECK(value(b.p, "branchsync_hub_changes_sent_total")
	    == 2 * NTHREADS * NITER);
	CHECK(value(b.p, "branchsync_hub_postgres_errors_total")
	    == NTHREADS * NITER);
	CHECK(value(b.p, "branchsync_hub_connected_agents") == 0);
	strbuf_fini(&b);
}

static const test_case cases[] = {
    {"histogram buckets are cumulative with +Inf, _sum, _count",
        test_histogram},
    {"counters, agents gauge, info and appending", test_counters},
    {"updates from several threads are not lost", test_threads},
};

TEST_MAIN(cases)
