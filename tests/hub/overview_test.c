/*
 * overview_test.c: tests of hub/overview.c short of the database: how a
 * branch's state is derived from its report and the thresholds, and the
 * three renderings (status table, JSON, Prometheus text).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "overview.h"
#include "testutil.h"

#define NOW 1800000000

static const ov_limits lim = {100, 300, 900};

/* branch returns a seen, enabled, empty branch (strings not owned). */
static ov_branch
branch(const char *code)
{
	return (ov_branch) {.code = (char *) code,
	    .enabled = true,
	    .last_seen = NOW - 5,
	    .queue_events = 0,
	    .queue_bytes = 0,
	    .oldest_age_s = 0,
	    .agent_version = (char *) "1.2.3",
	    .last_error = (char *) "",
	    .last_error_at = -1,
	    .last_pull = -1};
}

static void
test_state(void)
{
	ov_branch b = branch("s1");

	CHECK(overview_state(&b, NOW, &lim) == OV_OK);
	b.queue_events = 99;
	CHECK(overview_state(&b, NOW, &lim) == OV_OK);
	b.queue_events = 100; /* at the threshold: behind */
	CHECK(overview_state(&b, NOW, &lim) == OV_BEHIND);
	b.queue_events = 0;
	b.oldest_age_s = 300;
	CHECK(overview_state(&b, NOW, &lim) == OV_BEHIND);
	b.oldest_age_s = -1; /* unknown is not behind */
	b.queue_events = -1;
	CHECK(overview_state(&b, NOW, &lim) == OV_OK);
	/* Silent wins over behind: the report is stale. */
	b.queue_events = 5000;
	b.last_seen = NOW - 900;
	CHECK(overview_state(&b, NOW, &lim) == OV_SILENT);
	b.last_seen = NOW - 899;
	CHECK(overview_state(&b, NOW, &lim) == OV_BEHIND);
	b.last_seen = -1;
	CHECK(overview_state(&b, NOW, &lim) == OV_NEVER);
	b.enabled = false;
	CHECK(overview_state(&b, NOW, &lim) == OV_DISABLED);
	CHECK_STREQ(overview_state_name(OV_NEVER), "never");
	CHECK_STREQ(overview_state_name(OV_DISABLED), "disabled");
}

static void
test_duration(void)
{
	char d[32];

	overview_duration(0, d, sizeof d);
	CHECK_STREQ(d, "0 s");
	overview_duration(119, d, sizeof d);
	CHECK_STREQ(d, "119 s");
	overview_duration(3600, d, sizeof d);
	CHECK_STREQ(d, "60 min");
	overview_duration(7200, d, sizeof d);
	CHECK_STREQ(d, "2 h");
	overview_duration(3 * 86400, d, sizeof d);
	CHECK_STREQ(d, "3 d");
	overview_duration(-5, d, sizeof d); /* clock skew: not negative */
	CHECK_STREQ(d, "0 s");
}

/* list returns four branches in the four states a test expects. */
static ov_list
list4(ov_branch v[4])
{
	v[0] = branch("a-ok");
	v[1] = branch("b-behind");
	v[1].queue_events = 1234;
	v[1].oldest_age_s = 7200;
	v[2] = branch("c-silent");
	v[2].last_seen = NOW - 3600;
	v[2].last_error = (char *) "could not apply batch: boom\nsecond line";
	v[2].last_error_at = NOW - 30;
	v[3] = branch("d-never");
	v[3].last_seen = -1;
	v[3].queue_events = v[3].queue_bytes = v[3].oldest_age_s = -1;
	v[3].agent_version = (char *) "";
	for (int i = 0; i < 4; i++)
		v[i].state = overview_state(&v[i], NOW, &lim);
	return (ov_list) {NOW, v, 4};
}

static void
test_print(void)
{
	ov_branch v[4];
	ov_list l = list4(v);
	char *text = NULL, *line;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int rc = overview_print(f, &l, &lim);

	fclose(f);
	CHECK(rc == 2);
	CHECK_STR(text,
	    "behind_events 100, behind_seconds 300, "
	    "silent_seconds 900\n");
	CHECK_STR(text, "\nBRANCH    STATE   QUEUE  AGE  LAST_SEEN   ");
	line = strstr(text, "\nb-behind");
	CHECK(line != NULL);
	CHECK(!strncmp(line, "\nb-behind  behind  1234   2 h  5 s ago", 38));
	CHECK_STR(text, "\nc-silent  silent  0      0 s  60 min ago");
	/* The error keeps to one line. */
	CHECK_STR(text, "30 s ago: could not apply batch: boom second line\n");
	CHECK_STR(text, "\nd-never   never   -      -    never       ");
	CHECK_STR(text,
	    "\n4 branches: 1 ok, 1 behind, 1 silent, "
	    "1 never seen\n");
	free(text);

	/* Only ok and disabled: exit 0, and disabled ones are counted. */
	v[3].enabled = false;
	v[3].state = OV_DISABLED;
	l.n = 1;
	text = NULL;
	f = open_memstream(&text, &len);
	CHECK(overview_print(f, &l, &lim) == 0);
	fclose(f);
	CHECK_STR(text, "1 branch: 1 ok, 0 behind");
	free(text);
	v[1] = v[3];
	l.n = 2;
	text = NULL;
	f = open_memstream(&text, &len);
	CHECK(overview_print(f, &l, &lim) == 0);
	fclose(f);
	CHECK_STR(text,
	    "2 branches: 1 ok, 0 behind, 0 silent, 0 never seen, "
	    "1 disabled\n");
	free(text);
}

static void
test_json(void)
{
	ov_branch v[4];
	ov_list l = list4(v);
	json_t *j = overview_json(&l, &lim), *b;

	CHECK(j != NULL);
	CHECK(json_integer_value(
	          json_object_get(json_object_get(j, "hub"), "behind_events"))
	    == 100);
	CHECK(json_integer_value(
	          json_object_get(json_object_get(j, "hub"), "now"))
	    == NOW);
	CHECK(json_array_size(json_object_get(j, "branches")) == 4);
	b = json_array_get(json_object_get(j, "branches"), 1);
	CHECK_STREQ(json_string_value(json_object_get(b, "state")), "behind");
	CHECK(json_integer_value(json_object_get(b, "queue_events")) == 1234);
	CHECK(json_is_null(json_object_get(b, "last_error")));
	b = json_array_get(json_object_get(j, "branches"), 3);
	CHECK(json_is_null(json_object_get(b, "last_seen")));
	CHECK(json_is_null(json_object_get(b, "queue_events")));
	CHECK(json_is_null(json_object_get(b, "agent_version")));
	CHECK(json_is_true(json_object_get(b, "enabled")));
	json_decref(j);
}

static void
test_prom(void)
{
	ov_branch v[4];
	ov_list l = list4(v);
	strbuf b = {0};

	v[0].code = (char *) "a\"ok"; /* label values are escaped */
	overview_render_prom(&l, &b);
	CHECK_STR(b.p, "# TYPE branchsync_branch_queue_events gauge\n");
	CHECK_STR(
	    b.p, "branchsync_branch_queue_events{branch=\"b-behind\"} 1234\n");
	CHECK_STR(
	    b.p, "branchsync_branch_queue_events{branch=\"a\\\"ok\"} 0\n");
	CHECK_STR(b.p, "branchsync_branch_behind{branch=\"b-behind\"} 1\n");
	CHECK_STR(b.p, "branchsync_branch_up{branch=\"c-silent\"} 0\n");
	CHECK_STR(b.p, "branchsync_branch_up{branch=\"d-never\"} 0\n");
	CHECK_STR(b.p, "branchsync_branch_up{branch=\"b-behind\"} 1\n");
	CHECK_STR(b.p,
	    "branchsync_branch_last_seen_timestamp_seconds{branch="
	    "\"c-silent\"} 1799996400\n");
	/* Unknown values are left out, not shown as -1. */
	CHECK(strstr(b.p, "queue_events{branch=\"d-never\"}") == NULL);
	CHECK(strstr(b.p, " -1\n") == NULL);
	/* A disabled branch is left out entirely. */
	v[1].enabled = false;
	v[1].state = OV_DISABLED;
	strbuf_reset(&b);
	overview_render_prom(&l, &b);
	CHECK(strstr(b.p, "b-behind") == NULL);
	strbuf_fini(&b);
}

static const test_case cases[] = {
    {"states: thresholds inclusive, silent over behind, never, disabled",
        test_state},
    {"durations in s, min, h, d; never negative", test_duration},
    {"status table aligned, one line per branch, summary, exit status",
        test_print},
    {"JSON: thresholds, states, null for unknown", test_json},
    {"Prometheus: per-branch samples, escaping, unknown and disabled out",
        test_prom},
};

TEST_MAIN(cases)
