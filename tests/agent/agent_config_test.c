/*
 * agent_config_test.c: tests of agent/config.c: the [table NAME] direction and
 * the downstream keys of [agent]. Cases are named after the failure they
 * exercise.
 */
#include "agent_test.h"

static agent_config lc;

static const char head[] = "[agent]\nbranch = b1\nkey = k\ndatabase = x.db\n"
                           "hub = tcp://127.0.0.1:1\n";

/* Writes head + body to dir/agent.ini and loads it into lc. */
static bool
load(const char *body)
{
	char p[400];
	FILE *f;

	snprintf(p, sizeof p, "%s/agent.ini", dir);
	if ((f = fopen(p, "w")) == NULL)
		return false;
	fprintf(f, "%s%s", head, body);
	fclose(f);
	agent_config_free(&lc);
	return agent_config_load(p, true, &lc, err, sizeof err);
}

static void
cleanup(void)
{
	char p[400];

	agent_config_free(&lc);
	snprintf(p, sizeof p, "%s/agent.ini", dir);
	unlink(p);
}

static bool
test_old_config_changes(void)
{
	CHECK(load("[table transactions]\nkey = id\n[table payments]\n"));
	CHECK(lc.ntables == 2 && !lc.tables[0].down && !lc.tables[1].down);
	CHECK(agent_config_count_down(&lc) == 0);
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
	CHECK(agent_config_count_down(&lc) == 2);
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
	CHECK(!load("till =\n[table products]\n"));
	CHECK(strstr(err, "\"till\" is empty") != NULL);
	CHECK(!load("[table products]\ndirection = down\nexclude = a\n"));
	CHECK(strstr(err, "\"exclude\" is for up tables only") != NULL);
	CHECK(!load("[table sales]\nexclude = a\nexclude = b\n"));
	CHECK(strstr(err, "duplicate key \"exclude\"") != NULL);
	CHECK(load("[table sales]\nexclude = password, synced_at\n"));
	CHECK_STR(lc.tables[0].exclude, "password, synced_at");
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

static bool
test_log_file_keys_unchecked(void)
{
	CHECK(load("[table transactions]\n"));
	CHECK(lc.log_file == NULL && lc.log_file_max_bytes == 10485760);
	CHECK(load("log_file = C:\\ProgramData\\branchsync\\agent.log\n"
	           "log_file_max_bytes = 65536\n[table transactions]\n"));
	CHECK_STR(lc.log_file, "C:\\ProgramData\\branchsync\\agent.log");
	CHECK(lc.log_file_max_bytes == 65536);
	CHECK(!load("log_file =\n[table transactions]\n"));
	CHECK(strstr(err, "\"log_file\" is empty") != NULL);
	CHECK(!load("log_file_max_bytes = 65535\n[table transactions]\n"));
	CHECK(strstr(err, "log_file_max_bytes") != NULL);
	CHECK(!load("log_file_max_bytes = 1073741825\n[table t]\n"));
	CHECK(strstr(err, "log_file_max_bytes") != NULL);
	return true;
}

static bool
test_limits_ignored(void)
{
	proto_limits lim;

	CHECK(load("pull_max_rows = 20000\n[table transactions]\n"));
	agent_config_limits(&lc, &lim);
	CHECK(
	    lim.max_msg_bytes == 33554432 && lim.max_value_bytes == 16777216);
	CHECK(lim.max_columns == 1600 && lim.max_events == 20000);
	CHECK(load("max_message_bytes = 65536\nmax_value_bytes = 300\n"
	           "max_columns = 8\n[table transactions]\n"));
	agent_config_limits(&lc, &lim);
	CHECK(lim.max_msg_bytes == 65536 && lim.max_value_bytes == 300);
	CHECK(lim.max_columns == 8 && lim.max_events == 10000);
	CHECK(!load("max_message_bytes = 65535\n[table transactions]\n"));
	CHECK(strstr(err, "max_message_bytes") != NULL);
	CHECK(!load("max_value_bytes = 0\n[table transactions]\n"));
	CHECK(strstr(err, "max_value_bytes") != NULL);
	CHECK(!load("max_columns = 1601\n[table transactions]\n"));
	CHECK(strstr(err, "max_columns") != NULL);
	return true;
}

static bool
test_tls_keys_unchecked(void)
{
	/* tls+tcp:// needs tls_ca, in hub or in nudge. */
	CHECK(load("[table t]\n") && lc.tls_ca == NULL && lc.tls_cert == NULL);
	CHECK(!load("tls_ca = ca.pem\n[table t]\n"));
	CHECK(strstr(err,
	          "\"tls_ca\" is set but no \"hub\" or \"nudge\" "
	          "URL uses tls+tcp://")
	    != NULL);
	CHECK(!load("nudge = tls+tcp://h:2\n[table t]\n"));
	CHECK(strstr(err, "\"tls_ca\" is required") != NULL);
	CHECK(!load("nudge = tls+tcp://h:2\ntls_ca = ca.pem\n"
	            "tls_cert = c.pem\n[table t]\n"));
	CHECK(strstr(err,
	          "\"tls_cert\" and \"tls_key\" must be set "
	          "together")
	    != NULL);
	CHECK(!load("tls_server_name = hub\n[table t]\n"));
	CHECK(strstr(err, "\"tls_server_name\" is set but") != NULL);
	CHECK(load("nudge = tls+tcp://h:2\ntls_ca = ca.pem\n"
	           "tls_cert = c.pem\ntls_key = k.pem\n"
	           "tls_server_name = hub.example\n[table t]\n"));
	CHECK_STR(lc.tls_ca, "ca.pem");
	CHECK_STR(lc.tls_server_name, "hub.example");
	{
		tls_opts o;
		agent_config_tls_opts(&lc, &o);
		CHECK(!strcmp(o.ca, "ca.pem") && !strcmp(o.ca_key, "tls_ca")
		    && !strcmp(o.cert, "c.pem") && !strcmp(o.key, "k.pem"));
	}
	return true;
}

/* The ini file holds the inline key: readable by others, a warning. */
static bool
test_key_perms_silent(void)
{
	char p[400];

	snprintf(p, sizeof p, "%s/agent.ini", dir);
	CHECK(load("[table t]\n"));
	if (test_share(p, 1) < 0) {
		printf("skipped: this file system keeps no access control "
		       "lists\n");
		return true;
	}
	CHECK(test_share(p, 1) == 1);
	CHECK(tls_check_perms(p, "AGENT-KEY-PERMS", "the branch key"));
	CHECK(test_share(p, 2) == 1);
	CHECK(tls_check_perms(p, "AGENT-KEY-PERMS", "the branch key"));
	CHECK(test_share(p, 0) == 1);
	CHECK(!tls_check_perms(p, "AGENT-KEY-PERMS", "the branch key"));
	return true;
}

/* The agent's batch and pull keys carry the hub's names; the old names
 * still load, into the same setting, and both at once are refused. */
static bool
test_old_names_refused(void)
{
	CHECK(load("max_batch_events = 7\nmax_batch_bytes = 2048\n"
	           "max_pull_rows = 9\nlog_level = DEBUG\n"
	           "[table transactions]\n"));
	CHECK(lc.batch_max_events == 7 && lc.batch_max_bytes == 2048);
	CHECK(lc.pull_max_rows == 9 && lc.level == LOG_LVL_DEBUG);
	CHECK(load("batch_max_events = 8\nbatch_max_bytes = 4096\n"
	           "pull_max_rows = 10\n[table transactions]\n"));
	CHECK(lc.batch_max_events == 8 && lc.batch_max_bytes == 4096);
	CHECK(lc.pull_max_rows == 10);
	CHECK(!load("batch_max_events = 8\nmax_batch_events = 9\n"
	            "[table transactions]\n"));
	CHECK(strstr(err, "duplicate key \"max_batch_events\"") != NULL);
	CHECK(!load("max_pull_rows = 8\npull_max_rows = 100001\n"
	            "[table transactions]\n"));
	CHECK(strstr(err, "duplicate key \"max_pull_rows\"") != NULL);
	CHECK(!load("batch_max_events = 0\n[table transactions]\n"));
	CHECK(strstr(err, "batch_max_events") != NULL);
	return true;
}

static const agent_test_case cases[] = {
    {"old key names refused", test_old_names_refused},
    {"tls keys unchecked", test_tls_keys_unchecked},
    {"key file permissions silent", test_key_perms_silent},
    {"old config changes meaning", test_old_config_changes},
    {"direction ignored", test_direction_ignored},
    {"bad values accepted", test_bad_values_accepted},
    {"http_port unchecked", test_http_port_unchecked},
    {"limits ignored", test_limits_ignored},
    {"log file keys unchecked", test_log_file_keys_unchecked},
};

int
main(void)
{
	(void) query; /* harness helpers this file does not need */
	(void) exec;
	return agent_test_main("agent_config_test", LOG_LVL_ERROR, cases,
	    ARRAY_LEN(cases), cleanup);
}
