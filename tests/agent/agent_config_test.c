/*
 * agent_config_test.c: tests of agent/config.c: the [table NAME] direction and
 * the downstream keys of [agent]. Cases are named after the failure they
 * exercise.
 */
#include "agent_test.h"

static agent_conf lc;

static const char head[] = "[agent]\nbranch = b1\nkey = k\ndatabase = x.db\n"
                           "hub = tcp://127.0.0.1:1\n";

/* Writes head + body to dir/agent.ini and loads it into lc. */
static bool
load(const char *body)
{
	char p[160];
	FILE *f;

	snprintf(p, sizeof p, "%s/agent.ini", dir);
	if ((f = fopen(p, "w")) == NULL)
		return false;
	fprintf(f, "%s%s", head, body);
	fclose(f);
	config_free(&lc);
	return config_load(p, true, &lc, err, sizeof err);
}

static void
cleanup(void)
{
	char p[160];

	config_free(&lc);
	snprintf(p, sizeof p, "%s/agent.ini", dir);
	unlink(p);
}

static bool
test_old_config_changes(void)
{
	CHECK(load("[table transactions]\nkey = id\n[table payments]\n"));
	CHECK(lc.ntables == 2 && !lc.tables[0].down && !lc.tables[1].down);
	CHECK(config_count_down(&lc) == 0);
	CHECK(lc.nudge == NULL);
	CHECK(lc.pull_interval_ms == 30000 && lc.pull_max_rows == 5000);
	return true;
}

static bool
test_direction_ignored(void)
{
	CHECK(load("nudge = tcp://127.0.0.1:2, tcp://127.0.0.1:3\n"
	           "pull_interval_ms = 1000\npull_max_rows = 7\n"
	           "[table transactions]\ndirection = up\n"
	           "[table products]\ndirection = down\nkey = id\n"
	           "[table branch_prices]\ndirection = DOWN\n"));
	CHECK(!lc.tables[0].down && lc.tables[1].down && lc.tables[2].down);
	CHECK_STR(lc.tables[1].key, "id");
	CHECK(config_count_down(&lc) == 2);
	CHECK_STR(lc.nudge, "tcp://127.0.0.1:2, tcp://127.0.0.1:3");
	CHECK(lc.pull_interval_ms == 1000 && lc.pull_max_rows == 7);
	return true;
}

static bool
test_bad_values_accepted(void)
{
	CHECK(!load("[table products]\ndirection = sideways\n"));
	CHECK(strstr(err, "direction") != NULL && strstr(err, ":7:") != NULL);
	CHECK(!load("pull_interval_ms = 10\n[table products]\n"));
	CHECK(strstr(err, "pull_interval_ms") != NULL);
	CHECK(!load("pull_max_rows = 100001\n[table products]\n"));
	CHECK(strstr(err, "pull_max_rows") != NULL);
	return true;
}

static bool
test_http_port_unchecked(void)
{
	CHECK(load("[table transactions]\n"));
	CHECK(lc.http_port == 7453);
	CHECK(load("http_port = 0\n[table transactions]\n"));
	CHECK(lc.http_port == 0);
	CHECK(load("http_port = 65535\n[table transactions]\n"));
	CHECK(lc.http_port == 65535);
	CHECK(!load("http_port = 65536\n[table transactions]\n"));
	CHECK(strstr(err, "http_port") != NULL);
	CHECK(!load("http_port = -1\n[table transactions]\n"));
	CHECK(strstr(err, "http_port") != NULL);
	return true;
}

static const agent_test_case cases[] = {
    {"old config changes meaning", test_old_config_changes},
    {"direction ignored", test_direction_ignored},
    {"bad values accepted", test_bad_values_accepted},
    {"http_port unchecked", test_http_port_unchecked},
};

int
main(void)
{
	(void) query; /* harness helpers this file does not need */
	(void) exec;
	return agent_test_main("agent_config_test", LOG_LVL_ERROR, cases,
	    ARRAY_LEN(cases), cleanup);
}
