/*
 * config_test.c: tests of hub/config.c: defaults, the [table NAME]
 * allow-list (including empty sections) and the cross-key checks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "testutil.h"
#include "tls.h"

/* load writes text to a temporary file and loads it. */
static proto_err
load(const char *text, hub_config *conf, char *err, size_t errlen)
{
	char path[] = "/tmp/hub_config_testXXXXXX";
	int fd = mkstemp(path);
	proto_err rv;

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t) strlen(text))
		abort();
	close(fd);
	memset(conf, 0, sizeof *conf);
	rv = hub_config_load(path, conf, err, errlen);
	unlink(path);
	return rv;
}

static void
test_defaults_and_tables(void)
{
	hub_config c;
	char err[512] = "";
	const hub_table_config *t;

	CHECK(load("[hub]\nlisten = tcp://a:1, tcp://b:2\npostgres = x\n"
	           "[table transactions]\n"
	           "[table items]   ; comment\ntarget = sales.items\n",
	          &c, err, sizeof err)
	    == PROTO_OK);
	CHECK(c.workers == 4 && c.max_batch_events == 10000);
	CHECK(c.nurls == 2 && !strcmp(c.urls[1], "tcp://b:2"));
	CHECK(c.ntables == 2);
	t = hub_config_find(&c, "transactions");
	CHECK(t != NULL && !strcmp(t->schema, "public")
	    && !strcmp(t->relname, "transactions"));
	t = hub_config_find(&c, "items");
	CHECK(t != NULL && !strcmp(t->schema, "sales")
	    && !strcmp(t->relname, "items"));
	CHECK(hub_config_find(&c, "nope") == NULL);
	hub_config_free(&c);
}

static void
test_errors(void)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
	    {"[hub]\nlisten=x\n[table t]\n", "missing required key"},
	    {"[hub]\nlisten=x\npostgres=y\n", "no [table NAME]"},
	    {"[hub]\nlisten=x\npostgres=y\n[table t]\ndirection=sideways\n",
	        ":5: invalid direction \"sideways\""},
	    {"[hub]\nlisten=x\npostgres=y\n[table t]\nscope=branch_id\n",
	        "only for \"direction = down\""},
	    {"[hub]\nlisten=x\npostgres=y\n[table t]\ndirection=down\n"
	     "scope=\n",
	        ":6: empty \"scope\""},
	    {"[hub]\nlisten=x\npostgres=y\nmax_pull_rows=0\n[table t]\n",
	        "max_pull_rows"},
	    {"[hub]\nlisten=x\npostgres=y\n[table t]\ncolor=red\n",
	        "unknown key \"color\""},
	    {"[hub]\nlisten=x\npostgres=y\n[table t]\ntarget=.x\n",
	        "invalid target"},
	    {"[hub]\nlisten=x\npostgres=y\nlog_level=loud\n[table t]\n",
	        "log_level"},
	    {"[hub]\nlisten=x\npostgres=y\n[tables]\na=1\n",
	        "unknown section"},
	    {"[hub]\nlisten=x\npostgres=y\n[table t]\nconflict=newest\n",
	        ":5: invalid conflict \"newest\""},
	    {"[hub]\nlisten=x\npostgres=y\n[table t]\n"
	     "conflict=last_writer_wins\n",
	        "needs \"conflict_column\" (table \"t\")"},
	    {"[hub]\nlisten=x\npostgres=y\n[table t]\nconflict_column=u\n",
	        "only for \"conflict = last_writer_wins\""},
	    {"[hub]\nlisten=x\npostgres=y\n[table t]\ndirection=down\n"
	     "conflict=insert_only\n",
	        "only for up tables"},
	    {"[hub]\nlisten=x\npostgres=y\n[table t]\nconflict=insert_only\n"
	     "conflict=overwrite\n",
	        "duplicate key \"conflict\""},
	    {"[hub]\nlisten=x\npostgres=y\n[table t]\ncolumns=a:b,c\n",
	        "invalid \"columns\" entry \"c\""},
	    {"[hub]\nlisten=x\npostgres=y\n[table t]\ncolumns=a:\n",
	        "invalid \"columns\" entry"},
	    {"[hub]\nlisten=x\npostgres=y\n[table t]\ncolumns=a:b, c:b\n",
	        "column \"b\" is named twice"},
	    {"[hub]\nlisten=x\npostgres=y\n[table t]\ncolumns=a:b, a:c\n",
	        "column \"a\" is named twice"},
	    {"[hub]\nlisten=x\npostgres=y\n[table t]\ncolumns=a:branch_id\n",
	        "the branch_column of table \"t\""},
	    {"[hub]\nlisten=x\npostgres=y\n[table t]\nbranch_column=o\n"
	     "columns=x:o\n",
	        "maps \"x\" to \"o\""},
	    {"[hub]\nlisten=x\npostgres=y\n[table t]\nbranch_column=\n",
	        "empty \"branch_column\""},
	    {"[hub]\nlisten=x\npostgres=y\n[table t]\ndirection=down\n"
	     "branch_column=o\n",
	        "\"branch_column\" is only for up tables"},
	    {"[hub]\nlisten=x\npostgres=y\n[table t]\ndirection=down\n"
	     "columns=a:b\n",
	        "\"columns\" is only for up tables"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		hub_config c;
		char err[512] = "";
		CHECK(load(bad[i].text, &c, err, sizeof err) == PROTO_EINVAL);
		CHECK_STR(err, bad[i].want);
		hub_config_free(&c);
	}
}

static void
test_down_tables(void)
{
	hub_config c;
	char err[512] = "";
	const hub_table_config *t;

	CHECK(load("[hub]\nlisten = tcp://a:1\npostgres = x\n"
	           "publish = tcp://a:2, ipc:///tmp/x\nmax_pull_rows = 100\n"
	           "[table transactions]\ndirection = up\n"
	           "[table products]\ndirection = down\nscope = all\n"
	           "[table branch_prices]\nscope = branch_id\n"
	           "direction = down\n",
	          &c, err, sizeof err)
	    == PROTO_OK);
	CHECK(c.npub == 2 && !strcmp(c.pub_urls[1], "ipc:///tmp/x"));
	CHECK(c.max_pull_rows == 100);
	t = hub_config_find(&c, "transactions");
	CHECK(t != NULL && !t->down && t->scope == NULL);
	t = hub_config_find(&c, "products");
	CHECK(t != NULL && t->down && t->scope == NULL);
	t = hub_config_find(&c, "branch_prices");
	CHECK(t != NULL && t->down && !strcmp(t->scope, "branch_id"));
	hub_config_free(&c);

	/* No publish: no nudges; default page size. */
	CHECK(load("[hub]\nlisten = tcp://a:1\npostgres = x\n[table t]\n", &c,
	          err, sizeof err)
	    == PROTO_OK);
	CHECK(c.npub == 0 && c.publish == NULL && c.max_pull_rows == 5000);
	hub_config_free(&c);
}

static void
test_conflict_policies(void)
{
	hub_config c;
	char err[512] = "";
	const hub_table_config *t;

	CHECK(load("[hub]\nlisten = tcp://a:1\npostgres = x\n"
	           "[table a]\n"
	           "[table b]\nconflict = overwrite\n"
	           "[table c]\nconflict = insert_only\n"
	           "[table d]\nconflict_column = updated_at\n"
	           "conflict = last_writer_wins\n",
	          &c, err, sizeof err)
	    == PROTO_OK);
	t = hub_config_find(&c, "a");
	CHECK(t != NULL && t->policy == HUB_CONFLICT_OVERWRITE);
	t = hub_config_find(&c, "b");
	CHECK(t != NULL && t->policy == HUB_CONFLICT_OVERWRITE);
	t = hub_config_find(&c, "c");
	CHECK(t != NULL && t->policy == HUB_CONFLICT_INSERT_ONLY);
	t = hub_config_find(&c, "d");
	CHECK(t != NULL && t->policy == HUB_CONFLICT_LWW
	    && !strcmp(t->conflict_column, "updated_at"));
	hub_config_free(&c);
}

static void
test_column_mapping(void)
{
	hub_config c;
	char err[512] = "";
	const hub_table_config *t;

	CHECK(load("[hub]\nlisten = tcp://a:1\npostgres = x\n"
	           "[table a]\ncolumns = branch_id:branch_code , amt: amount\n"
	           "[table b]\nbranch_column = origin_branch\n"
	           "[table d]\ndirection = down\n",
	          &c, err, sizeof err)
	    == PROTO_OK);
	t = hub_config_find(&c, "a");
	CHECK(t != NULL && !strcmp(t->branch_column, "branch_id"));
	CHECK(t->ncolmap == 2 && !strcmp(t->colmap[1].pos, "amt")
	    && !strcmp(t->colmap[1].center, "amount"));
	CHECK(!strcmp(hub_config_center_col(t, "branch_id"), "branch_code"));
	CHECK(!strcmp(hub_config_center_col(t, "amount"), "amount"));
	t = hub_config_find(&c, "b");
	CHECK(t != NULL && !strcmp(t->branch_column, "origin_branch")
	    && t->ncolmap == 0);
	CHECK(!strcmp(hub_config_center_col(t, "branch_id"), "branch_id"));
	t = hub_config_find(&c, "d");
	CHECK(t != NULL && t->branch_column == NULL);
	CHECK(!strcmp(hub_config_center_col(NULL, "x"), "x"));
	hub_config_free(&c);
}

static void
test_limits(void)
{
	hub_config c;
	char err[512] = "";

	CHECK(load("[hub]\nlisten = tcp://a:1\npostgres = x\n[table t]\n", &c,
	          err, sizeof err)
	    == PROTO_OK);
	CHECK(c.max_columns == 256 && c.max_tables == 64);
	CHECK(c.max_value_bytes == 1048576 && c.max_pull_rows == 5000);
	CHECK(c.max_message_bytes == 16777216);
	hub_config_free(&c);
	CHECK(load("[hub]\nlisten = tcp://a:1\npostgres = x\n"
	           "max_columns = 1600\nmax_tables = 1\nmax_value_bytes = 1\n"
	           "[table t]\n",
	          &c, err, sizeof err)
	    == PROTO_OK);
	CHECK(c.max_columns == 1600 && c.max_tables == 1);
	CHECK(c.max_value_bytes == 1);
	hub_config_free(&c);
	CHECK(load("[hub]\nlisten = tcp://a:1\npostgres = x\n"
	           "max_columns = 1601\n[table t]\n",
	          &c, err, sizeof err)
	    == PROTO_EINVAL);
	CHECK_STR(err, "max_columns");
	CHECK(load("[hub]\nlisten = tcp://a:1\npostgres = x\n"
	           "max_value_bytes = 0\n[table t]\n",
	          &c, err, sizeof err)
	    == PROTO_EINVAL);
	CHECK_STR(err, "max_value_bytes");
}

static void
test_operator_keys(void)
{
	hub_config c;
	char err[512] = "";

	/* Defaults. */
	CHECK(load("[hub]\nlisten = tcp://a:1\npostgres = x\n[table t]\n", &c,
	          err, sizeof err)
	    == PROTO_OK);
	CHECK_STREQ(c.http_listen, "127.0.0.1:7452");
	CHECK(c.behind_events == 10000 && c.behind_seconds == 300);
	CHECK(c.silent_seconds == 900 && c.sample_interval_s == 60);
	hub_config_free(&c);

	/* Set, at the ends of their ranges. */
	CHECK(load("[hub]\nlisten = tcp://a:1\npostgres = x\n"
	           "http_listen = [::1]:65535\nbehind_events = 1\n"
	           "behind_seconds = 1\nsilent_seconds = 31536000\n"
	           "sample_interval_s = 3600\n[table t]\n",
	          &c, err, sizeof err)
	    == PROTO_OK);
	CHECK_STREQ(c.http_listen, "[::1]:65535");
	CHECK(c.behind_events == 1 && c.behind_seconds == 1);
	CHECK(c.silent_seconds == 31536000 && c.sample_interval_s == 3600);
	hub_config_free(&c);

	/* Empty: no operator listener (the string stays, empty). */
	CHECK(load("[hub]\nlisten = tcp://a:1\npostgres = x\n"
	           "http_listen =\nsample_interval_s = 1\n[table t]\n",
	          &c, err, sizeof err)
	    == PROTO_OK);
	CHECK(c.http_listen != NULL && c.http_listen[0] == '\0');
	CHECK(c.sample_interval_s == 1);
	hub_config_free(&c);

	/* A host name is fine. */
	CHECK(load("[hub]\nlisten = tcp://a:1\npostgres = x\n"
	           "http_listen = hub.example:8080\n[table t]\n",
	          &c, err, sizeof err)
	    == PROTO_OK);
	CHECK_STREQ(c.http_listen, "hub.example:8080");
	hub_config_free(&c);
}

static void
test_tls_keys(void)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
	    {"[hub]\nlisten=tls+tcp://a:1\npostgres=y\n[table t]\n",
	        "\"tls_cert\" is required: \"listen\" or \"publish\" has a "
	        "tls+tcp:// URL"},
	    {"[hub]\nlisten=tcp://a:1\npostgres=y\n"
	     "publish=tls+tcp://a:2\ntls_cert=c\n[table t]\n",
	        "\"tls_key\" is required"},
	    {"[hub]\nlisten=tcp://a:1\npostgres=y\ntls_cert=c\ntls_key=k\n"
	     "[table t]\n",
	        "\"tls_cert\" is set but no \"listen\" or \"publish\" URL "
	        "uses tls+tcp://"},
	    {"[hub]\nlisten=tcp://a:1\npostgres=y\ntls_client_ca=ca\n"
	     "[table t]\n",
	        "\"tls_client_ca\" is set but"},
	};
	hub_config c;
	char err[512] = "";

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK(load(bad[i].text, &c, err, sizeof err) == PROTO_EINVAL);
		CHECK_STR(err, bad[i].want);
		hub_config_free(&c);
	}
	/* Mixed listen URLs; files are only read by "run". */
	CHECK(load("[hub]\nlisten = tcp://a:1, tls+tcp://a:2\npostgres = x\n"
	           "tls_cert = /nonexistent/hub.crt\ntls_key = k\n"
	           "[table t]\n",
	          &c, err, sizeof err)
	    == PROTO_OK);
	CHECK_STREQ(c.tls_cert, "/nonexistent/hub.crt");
	CHECK(tls_any_url(c.urls, c.nurls) && !tls_url(c.urls[0]));
	hub_config_free(&c);
	/* But not with client certificates: the plain listener would let
	 * agents in without one. */
	CHECK(load("[hub]\nlisten = tls+tcp://a:2, tcp://a:1\npostgres = x\n"
	           "tls_cert = c\ntls_key = k\ntls_client_ca = ca\n"
	           "[table t]\n",
	          &c, err, sizeof err)
	    == PROTO_EINVAL);
	CHECK_STR(err,
	    "\"listen\" has \"tcp://a:1\", which is not tls+tcp://, while "
	    "\"tls_client_ca\" is set");
	CHECK(
	    load("[hub]\nlisten = tls+tcp://a:2, ipc:///tmp/h\npostgres = x\n"
	         "tls_cert = c\ntls_key = k\ntls_client_ca = ca\n"
	         "[table t]\n",
	        &c, err, sizeof err)
	    == PROTO_EINVAL);
	CHECK(load("[hub]\nlisten = tls+tcp://a:2, tls+tcp6://[::1]:3\n"
	           "postgres = x\ntls_cert = c\ntls_key = k\n"
	           "tls_client_ca = ca\npublish = tcp://a:4\n[table t]\n",
	          &c, err, sizeof err)
	    == PROTO_OK);
	CHECK_STREQ(c.tls_client_ca, "ca");
	hub_config_free(&c);
	CHECK(load("[hub]\nlisten = tcp://a:1\npostgres = x\n[table t]\n", &c,
	          err, sizeof err)
	    == PROTO_OK);
	CHECK(c.tls_cert == NULL && c.tls_key == NULL
	    && c.tls_client_ca == NULL);
	hub_config_free(&c);
}

/* accept_plain_keys, auth_fail_max, auth_fail_window_s. */
static void
test_auth_keys(void)
{
	hub_config c;
	char err[512] = "";

	CHECK(load("[hub]\nlisten = tcp://a:1\npostgres = x\n[table t]\n", &c,
	          err, sizeof err)
	    == PROTO_OK);
	CHECK(!c.accept_plain_keys && c.auth_fail_max == 20
	    && c.auth_fail_window_s == 60);
	hub_config_free(&c);
	CHECK(load("[hub]\nlisten = tcp://a:1\npostgres = x\n"
	           "accept_plain_keys = true\nauth_fail_max = 1\n"
	           "auth_fail_window_s = 86400\n[table t]\n",
	          &c, err, sizeof err)
	    == PROTO_OK);
	CHECK(c.accept_plain_keys && c.auth_fail_max == 1
	    && c.auth_fail_window_s == 86400);
	hub_config_free(&c);
	CHECK(load("[hub]\nlisten = tcp://a:1\npostgres = x\n"
	           "auth_fail_max = 0\n[table t]\n",
	          &c, err, sizeof err)
	    == PROTO_EINVAL);
	CHECK_STR(err, "auth_fail_max");
	hub_config_free(&c);
	CHECK(load("[hub]\nlisten = tcp://a:1\npostgres = x\n"
	           "accept_plain_keys = maybe\n[table t]\n",
	          &c, err, sizeof err)
	    == PROTO_EINVAL);
	CHECK_STR(err, "accept_plain_keys");
	hub_config_free(&c);
}

/* The files named by tls_cert and tls_key are checked when "run" starts. */
static void
test_tls_files(void)
{
	tls_opts o = {NULL, "tls_client_ca", "/nonexistent/hub.crt",
	    "/nonexistent/hub.key", NULL, "HUB-KEY-PERMS"};
	nng_tls_config *cfg = NULL;
	char err[512] = "", path[] = "/tmp/hub_tls_testXXXXXX";
	int fd;

	CHECK(tls_server_new(&o, &cfg, err, sizeof err) == PROTO_EINVAL);
	CHECK(cfg == NULL);
	CHECK_STR(err, "could not read tls_cert \"/nonexistent/hub.crt\"");
	CHECK((fd = mkstemp(path)) >= 0);
	CHECK(write(fd, "not a certificate\n", 18) == 18);
	close(fd);
	o.cert = path;
	CHECK(tls_server_new(&o, &cfg, err, sizeof err) == PROTO_EINVAL);
	CHECK_STR(err, "could not read tls_key \"/nonexistent/hub.key\"");
	o.key = path;
	CHECK(tls_server_new(&o, &cfg, err, sizeof err) == PROTO_EINVAL);
	unlink(path);
	CHECK_STR(err, "no PEM certificate in tls_cert");
}

static const test_case cases[] = {
    {"tls keys: required with tls+tcp://, refused without; "
     "tls_client_ca beside a plain listener",
        test_tls_keys},
    {"tls files: unreadable or not PEM", test_tls_files},
    {"auth keys: defaults, ranges", test_auth_keys},
    {"operator keys: defaults, ranges, empty http_listen", test_operator_keys},
    {"limits: defaults, ranges", test_limits},
    {"conflict policies", test_conflict_policies},
    {"branch_column and column renames", test_column_mapping},
    {"down tables, scope and publish", test_down_tables},
    {"defaults and empty table sections", test_defaults_and_tables},
    {"bad config files", test_errors},
};

TEST_MAIN(cases)
