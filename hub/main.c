/*
 * main.c: command line of branchsync-hub, the head-office side of
 * branchsync: migrate the PostgreSQL schema, add branches, serve agents,
 * and let an operator retry or discard rejects and resolve conflicts.
 *
 * Exit status: 0 on success (including a stop by SIGTERM/SIGINT), 1 on
 * any error. "status" also exits 2 when it ran but some enabled branch is
 * behind, silent or never seen, so that scripts and monitoring can act.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <nng/nng.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "catalog.h"
#include "config.h"
#include "fault.h"
#include "db.h"
#include "feed.h"
#include "housekeep.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "overview.h"
#include "platform.h"
#include "server.h"
#include "util.h"

#define PROG "branchsync-hub"

/* Options of the rejects and conflicts commands. */
static struct {
	const char *branch;  /* --branch CODE, or NULL */
	const char *by;      /* --by NAME, or NULL */
	bool all;            /* --all */
	bool json;           /* --json (status) */
	const char *overlap; /* --overlap SECONDS (branch rotate-key) */
	int64_t overlap_s;   /* its value, checked */
} opt;

/* The previous key's validity after "branch rotate-key", by default. */
#define DEFAULT_OVERLAP_S 86400
/* The longest --overlap accepted: 30 days. */
#define MAX_OVERLAP_S (30 * 86400)

static void
usage(void)
{
	printf(
	    PROG " receives the changes of branch POS databases and "
	         "applies them to PostgreSQL.\n\n"
	         "Usage:\n"
	         "  " PROG " migrate -c FILE        create or upgrade the "
	         "branchsync schema\n"
	         "  " PROG " run -c FILE            serve agents until "
	         "SIGTERM\n"
	         "  " PROG " prune -c FILE          delete rejects and "
	         "conflicts resolved more\n"
	         "                                    than retention_days "
	         "ago (run also does it\n"
	         "                                    hourly)\n"
	         "  " PROG " status -c FILE [--json]\n"
	         "                                    every branch's state; "
	         "exit 2 if one is\n"
	         "                                    behind, silent or "
	         "never seen\n"
	         "  " PROG " branch add CODE -c FILE\n"
	         "                                    add a branch; prints "
	         "its key once\n"
	         "  " PROG " branch rotate-key CODE -c FILE [--overlap "
	         "SECONDS]\n"
	         "                                    new key, printed once; "
	         "the old one works\n"
	         "                                    for --overlap seconds "
	         "more (default 86400)\n"
	         "  " PROG " branch disable|enable CODE -c FILE\n"
	         "                                    refuse or accept the "
	         "branch's requests\n"
	         "  " PROG " branch list -c FILE     every branch, its "
	         "key's age and overlap\n"
	         "  " PROG " till add BRANCH TILL -c FILE\n"
	         "                                    add a till (POS file) "
	         "to a branch; prints\n"
	         "                                    its key once\n"
	         "  " PROG " till rotate-key BRANCH TILL -c FILE "
	         "[--overlap SECONDS]\n"
	         "  " PROG " till disable|enable BRANCH TILL -c FILE\n"
	         "  " PROG " till list [BRANCH] -c FILE\n"
	         "                                    tills, their ids and "
	         "keys' age\n"
	         "  " PROG " rejects list -c FILE [--branch CODE] [--all]\n"
	         "                                    open rejects (--all: "
	         "also resolved, discarded)\n"
	         "  " PROG " rejects retry ID...|--branch CODE -c FILE\n"
	         "                                    have the branch send "
	         "the events again\n"
	         "  " PROG " rejects discard ID...|--branch CODE -c FILE "
	         "[--by NAME]\n"
	         "                                    give the events up\n"
	         "  " PROG " conflicts list -c FILE [--branch CODE] "
	         "[--all]\n"
	         "                                    unresolved conflicts "
	         "(--all: every one)\n"
	         "  " PROG " conflicts resolve ID keep_server|keep_local|"
	         "merge -c FILE [--by NAME]\n"
	         "                                    apply and record a "
	         "resolution\n\n"
	         "Options:\n"
	         "  -c, --config=FILE   configuration file (INI, see "
	         "hub.ini.example)\n"
	         "      --branch=CODE   only this branch's rejects or "
	         "conflicts\n"
	         "      --all           list resolved ones too\n"
	         "      --by=NAME       who resolves (default: $USER, or "
	         "\"operator\")\n"
	         "      --json          status as JSON (the same object as "
	         "GET /api/status)\n"
	         "      --overlap=SECONDS  how long the previous key stays "
	         "valid (0: not at all)\n"
	         "  -V, --version       output version information, then "
	         "exit\n"
	         "  -?, --help          show this help, then exit\n");
}

/* bad_usage reports a command line error with the usual hint; exits 1. */
static void bad_usage(const char *fmt, ...) BS_PRINTF(1, 2)
    __attribute__((noreturn));

static void
bad_usage(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	cli_error("%s", msg);
	cli_hint("Try \"%s --help\" for more information.", PROG);
	exit(1);
}

/* load loads the configuration or exits 1. */
static void
load(const char *path, hub_config *conf)
{
	char err[1024];

	if (hub_config_load(path, conf, err, sizeof err) != PROTO_OK)
		cli_fatal("%s", err);
	log_set_level(conf->level);
}

/* connect_checked connects and, if want_schema, checks the migrations. */
static PGconn *
connect_checked(const hub_config *conf, bool want_schema)
{
	char err[1024];
	PGconn *conn;

	if (db_connect(conf->postgres, &conn, err, sizeof err) != PROTO_OK)
		cli_fatal("%s", err);
	if (want_schema && migrate_check(conn, err, sizeof err) != PROTO_OK) {
		PQfinish(conn);
		cli_fatal("%s", err);
	}
	return conn;
}

/*
 * install_feeds installs the change-feed triggers of the down tables
 * and backfills their existing rows (see feed.h); it also drops the triggers
 * of tables that are no longer down, so it runs even with none.
 */
static int
install_feeds(PGconn *conn, const hub_config *conf)
{
	char err[1024];
	catalog *cat;
	int64_t rows;
	int dropped;
	size_t ndown = 0;

	if (catalog_load(conn, conf, true, &cat, err, sizeof err)
	    != PROTO_OK) {
		cli_error("%s", err);
		return 1;
	}
	if (feed_install(conn, cat, &rows, &dropped, err, sizeof err)
	    != PROTO_OK) {
		catalog_free(cat);
		cli_error("could not install the change feed: %s", err);
		return 1;
	}
	catalog_free(cat);
	for (size_t i = 0; i < conf->ntables; i++)
		ndown += conf->tables[i].down;
	if (ndown > 0 || dropped > 0)
		printf("change feed: %zu down tables, %" PRId64
		       " rows recorded, %d triggers dropped\n",
		    ndown, rows, dropped);
	return 0;
}

static int
cmd_migrate(const hub_config *conf)
{
	PGconn *conn = connect_checked(conf, false);
	char err[1024];
	int from, to, rc;

	if (migrate_run(conn, &from, &to, err, sizeof err) != PROTO_OK) {
		PQfinish(conn);
		cli_error("could not migrate: %s", err);
		return 1;
	}
	if (from == to)
		printf("schema already at version %d\n", to);
	else
		printf("schema migrated from version %d to %d\n", from, to);
	rc = install_feeds(conn, conf);
	PQfinish(conn);
	return rc;
}

static int
cmd_prune(const hub_config *conf)
{
	char err[1024];
	int64_t r, c;

	if (housekeep_run(
	        conf->postgres, conf->retention_days, &r, &c, err, sizeof err)
	    != PROTO_OK) {
		cli_error("could not prune: %s", err);
		return 1;
	}
	printf("deleted %" PRId64 " rejects and %" PRId64
	       " conflicts resolved more than %" PRId64 " days ago\n",
	    r, c, conf->retention_days);
	return 0;
}

static int
cmd_run(const hub_config *conf)
{
	char err[1024];
	PGconn *conn;
	catalog *cat;
	hub_http *http = NULL;
	proto_err rv;

	plat_sig_install();
	metrics_init();
	/*
	 * Requests of up to max_message_bytes come and go, from branches and
	 * from strangers alike: buffers from 256 KiB up are mapped apart and
	 * given back to the system when freed. Otherwise glibc raises its
	 * threshold at the first such free and keeps them in the arena of
	 * whichever nng thread received them, so a burst of large requests
	 * would stay in the hub's memory.
	 */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	/* Under systemd PostgreSQL may still be starting: wait for it. */
	if (db_connect_retry(conf->postgres, &conn) != PROTO_OK)
		return 0; /* stopped by a signal while waiting */
	if ((rv = migrate_check(conn, err, sizeof err)) != PROTO_OK
	    || (rv = catalog_load(conn, conf, false, &cat, err, sizeof err))
	        != PROTO_OK) {
		PQfinish(conn);
		log_error("HUB-START-FAIL", "%s", err);
		return 1;
	}
	PQfinish(conn);
	/* The operator listener first: a taken port stops the start. */
	if ((rv = hub_http_start(conf, &http, err, sizeof err)) == PROTO_OK)
		rv = server_run(conf, cat, err, sizeof err);
	hub_http_stop(http);
	/* Every socket is closed and every thread that used nng has ended:
	 * let nng tear down what its own threads still hold (as the agent). */
	plat_nng_fini();
	catalog_free(cat);
	if (rv != PROTO_OK) {
		log_error("HUB-START-FAIL", "%s", err);
		return 1;
	}
	metrics_fini();
	log_info("HUB-STOP", "stopped");
	return 0;
}

/*
 * cmd_status prints every branch's state (overview.h), as a table or as
 * JSON; exit 2 when an enabled branch is behind, silent or never seen.
 */
static int
cmd_status(const hub_config *conf)
{
	PGconn *conn = connect_checked(conf, true);
	ov_limits lim = {
	    conf->behind_events, conf->behind_seconds, conf->silent_seconds};
	ov_list l = {0};
	char err[1024];
	json_t *j;
	int rc = 0;

	if (overview_read(conn, &lim, &l, err, sizeof err) != PROTO_OK) {
		PQfinish(conn);
		cli_error("could not read status: %s", err);
		return 1;
	}
	PQfinish(conn);
	if (opt.json) {
		j = overview_json(&l, &lim);
		json_dumpf(j, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(j);
		for (size_t i = 0; i < l.n; i++)
			if (l.v[i].state != OV_OK
			    && l.v[i].state != OV_DISABLED)
				rc = 2;
	} else
		rc = overview_print(stdout, &l, &lim);
	overview_free(&l);
	if (fflush(stdout) != 0) {
		cli_error("could not write the status: %s", strerror(errno));
		return 1;
	}
	return rc;
}

/* resolver names who resolves: --by, $USER, or "operator". */
static const char *
resolver(void)
{
	const char *user = getenv("USER");

	if (opt.by != NULL)
		return opt.by;
	return user != NULL && user[0] != '\0' ? user : "operator";
}

/* finish closes conn and reports err for a failed admin command. */
static int
finish(PGconn *conn, proto_err rv, const char *what, const char *err)
{
	PQfinish(conn);
	if (rv == PROTO_EINVAL) {
		cli_error("%s", err);
		return 1;
	}
	if (rv != PROTO_OK) {
		cli_error("could not %s: %s", what, err);
		return 1;
	}
	return 0;
}

static int
cmd_rejects(const hub_config *conf, char **args, int nargs)
{
	PGconn *conn = connect_checked(conf, true);
	char err[1024];
	int64_t n = 0;
	proto_err rv;
	bool discard = !strcmp(args[1], "discard");

	if (!strcmp(args[1], "list"))
		return finish(conn,
		    admin_rejects_list(
		        conn, opt.branch, opt.all, stdout, err, sizeof err),
		    "list rejects", err);
	rv = admin_rejects_set(conn, discard, args + 2, nargs - 2, opt.branch,
	    resolver(), &n, err, sizeof err);
	if (rv == PROTO_OK)
		printf("%" PRId64 " reject%s %s\n", n, n == 1 ? "" : "s",
		    discard ? "discarded" : "marked for retry");
	return finish(conn, rv,
	    discard ? "discard rejects" : "mark rejects for retry", err);
}

static int
cmd_conflicts(const hub_config *conf, char **args)
{
	PGconn *conn = connect_checked(conf, true);
	char err[1024];
	catalog *cat;
	proto_err rv;

	if (!strcmp(args[1], "list"))
		return finish(conn,
		    admin_conflicts_list(
		        conn, opt.branch, opt.all, stdout, err, sizeof err),
		    "list conflicts", err);
	if ((rv = catalog_load(conn, conf, false, &cat, err, sizeof err))
	    != PROTO_OK)
		return finish(conn, rv, "read the tables", err);
	rv = admin_conflict_resolve(
	    conn, cat, args[2], args[3], resolver(), err, sizeof err);
	catalog_free(cat);
	if (rv == PROTO_OK)
		printf("conflict %s resolved: %s\n", args[2], args[3]);
	return finish(conn, rv, "resolve the conflict", err);
}

/*
 * cmd_branch runs "branch add|rotate-key|disable|enable|list". A new key
 * goes to stdout alone, one line, so scripts can capture it; notes go to
 * stderr.
 */
static int
cmd_branch(const hub_config *conf, char **args)
{
	PGconn *conn = connect_checked(conf, true);
	char key[KEYS_KEY_HEX + 1], until[64], err[1024];
	const char *sub = args[1], *code = args[2];
	proto_err rv;

	if (!strcmp(sub, "list"))
		return finish(conn,
		    admin_branch_list(conn, stdout, err, sizeof err),
		    "list branches", err);
	if (!strcmp(sub, "disable") || !strcmp(sub, "enable")) {
		rv = keys_branch_set_enabled(
		    conn, code, sub[0] == 'e', err, sizeof err);
		if (rv == PROTO_OK)
			printf("branch \"%s\" %sd\n", code, sub);
		return finish(conn, rv, "change the branch", err);
	}
	if (!strcmp(sub, "add"))
		rv = keys_branch_add(conn, code, key, err, sizeof err);
	else
		rv = keys_branch_rotate(conn, code, opt.overlap_s, key, until,
		    sizeof until, err, sizeof err);
	if (rv != PROTO_OK)
		return finish(conn, rv,
		    sub[0] == 'a' ? "add branch" : "rotate the key", err);
	PQfinish(conn);
	printf("%s\n", key);
	if (sub[0] == 'r')
		fprintf(stderr,
		    until[0] != '\0'
		        ? PROG ": the previous key of \"%s\" is accepted "
		               "until %s\n"
		        : PROG ": the previous key of \"%s\" no longer "
		               "works%s\n",
		    code, until);
	return 0;
}

/*
 * cmd_till runs "till add|rotate-key|disable|enable|list", the branch
 * commands for one till (args: "till", sub, BRANCH, TILL).
 */
static int
cmd_till(const hub_config *conf, char **args, int nargs)
{
	PGconn *conn = connect_checked(conf, true);
	char key[KEYS_KEY_HEX + 1], until[64], err[1024];
	const char *sub = args[1], *branch = args[2], *till = args[3];
	proto_err rv;

	if (!strcmp(sub, "list"))
		return finish(conn,
		    admin_till_list(conn, nargs > 2 ? branch : NULL, stdout,
		        err, sizeof err),
		    "list tills", err);
	if (!strcmp(sub, "disable") || !strcmp(sub, "enable")) {
		rv = keys_till_set_enabled(
		    conn, branch, till, sub[0] == 'e', err, sizeof err);
		if (rv == PROTO_OK)
			printf("till \"%s\" of branch \"%s\" %sd\n", till,
			    branch, sub);
		return finish(conn, rv, "change the till", err);
	}
	if (!strcmp(sub, "add"))
		rv = keys_till_add(conn, branch, till, key, err, sizeof err);
	else
		rv = keys_till_rotate(conn, branch, till, opt.overlap_s, key,
		    until, sizeof until, err, sizeof err);
	if (rv != PROTO_OK)
		return finish(conn, rv,
		    sub[0] == 'a' ? "add till" : "rotate the key", err);
	PQfinish(conn);
	printf("%s\n", key);
	if (sub[0] == 'r')
		fprintf(stderr,
		    until[0] != '\0'
		        ? PROG ": the previous key of till \"%s\" is "
		               "accepted until %s\n"
		        : PROG ": the previous key of till \"%s\" no longer "
		               "works%s\n",
		    till, until);
	return 0;
}

/* parse_options handles -c and returns the config path (exits on error). */
static const char *
parse_options(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"branch", required_argument, NULL, 'b'},
	    {"by", required_argument, NULL, 'y'},
	    {"all", no_argument, NULL, 'a'}, {"json", no_argument, NULL, 'j'},
	    {"overlap", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, '?'},
	    {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0}};
	const char *path = NULL;
	int c;

	opterr = 0; /* we word the errors ourselves */
	while ((c = getopt_long(argc, argv, "c:V?", opts, NULL)) != -1) {
		if (c == 'c')
			path = optarg;
		else if (c == 'b')
			opt.branch = optarg;
		else if (c == 'y')
			opt.by = optarg;
		else if (c == 'a')
			opt.all = true;
		else if (c == 'j')
			opt.json = true;
		else if (c == 'o')
			opt.overlap = optarg;
		else if (c == 'V') {
			printf(PROG " " BS_VERSION "%s\n",
			    fault_enabled() ? " (with fault sites)" : "");
			exit(0);
		} else
			bad_usage("invalid option \"%s\"", argv[optind - 1]);
	}
	if (path == NULL)
		bad_usage("no configuration file given (use -c FILE)");
	return path;
}

/* check_rejects validates "rejects ..." and its options. */
static void
check_rejects(char **args, int nargs)
{
	const char *sub = nargs > 1 ? args[1] : "";

	if (!strcmp(sub, "list")) {
		if (opt.by != NULL)
			bad_usage(
			    "\"--by\" is not valid for \"rejects list\"");
		if (nargs > 2)
			bad_usage("too many command-line arguments (first is "
			          "\"%s\")",
			    args[2]);
		return;
	}
	if (strcmp(sub, "retry") != 0 && strcmp(sub, "discard") != 0)
		bad_usage(
		    "unknown rejects command (expected \"rejects list\", "
		    "\"rejects retry\" or \"rejects discard\")");
	if (opt.all)
		bad_usage("\"--all\" is only valid for \"list\"");
	if (opt.by != NULL && !strcmp(sub, "retry"))
		bad_usage("\"--by\" is not valid for \"rejects retry\"");
	if (nargs == 2 && opt.branch == NULL)
		bad_usage(
		    "\"rejects %s\" needs reject IDs or --branch CODE", sub);
	if (nargs > 2 && opt.branch != NULL)
		bad_usage("give reject IDs or --branch CODE, not both");
}

/* check_conflicts validates "conflicts ..." and its options. */
static void
check_conflicts(char **args, int nargs)
{
	const char *sub = nargs > 1 ? args[1] : "";

	if (!strcmp(sub, "list")) {
		if (opt.by != NULL)
			bad_usage(
			    "\"--by\" is not valid for \"conflicts list\"");
		if (nargs > 2)
			bad_usage("too many command-line arguments (first is "
			          "\"%s\")",
			    args[2]);
		return;
	}
	if (strcmp(sub, "resolve") != 0)
		bad_usage("unknown conflicts command (expected \"conflicts "
		          "list\" or \"conflicts resolve\")");
	if (opt.all || opt.branch != NULL)
		bad_usage("\"--all\" and \"--branch\" are only valid for "
		          "\"list\"");
	if (nargs != 4)
		bad_usage("\"conflicts resolve\" needs an ID and one of "
		          "keep_server, keep_local, merge");
	if (strcmp(args[3], "keep_server") && strcmp(args[3], "keep_local")
	    && strcmp(args[3], "merge"))
		bad_usage("unknown resolution \"%s\" (expected keep_server, "
		          "keep_local or merge)",
		    args[3]);
}

/*
 * check_keyed validates "branch ..." and "till ..." (what), which share
 * their subcommands and options: list takes at most nlist - 2 more
 * arguments, the others exactly nargs_one - 2 (named in "needs").
 */
static void
check_keyed(char **args, int nargs, const char *what, int nlist, int nargs_one,
    const char *needs)
{
	const char *sub = nargs > 1 ? args[1] : "";
	bool list = !strcmp(sub, "list");
	char err[256];

	if (!list && strcmp(sub, "add") && strcmp(sub, "rotate-key")
	    && strcmp(sub, "disable") && strcmp(sub, "enable"))
		bad_usage("unknown %s command (expected \"%s add\", "
		          "\"rotate-key\", \"disable\", \"enable\" or "
		          "\"list\")",
		    what, what);
	if (opt.overlap != NULL && strcmp(sub, "rotate-key"))
		bad_usage(
		    "\"--overlap\" is only valid for \"%s rotate-key\"", what);
	opt.overlap_s = DEFAULT_OVERLAP_S;
	if (opt.overlap != NULL
	    && !parse_int64(opt.overlap, 0, MAX_OVERLAP_S, &opt.overlap_s,
	        "--overlap", err, sizeof err))
		bad_usage("%s (seconds, at most %d)", err, MAX_OVERLAP_S);
	if (list && nargs > nlist)
		bad_usage("too many command-line arguments (first is \"%s\")",
		    args[nlist]);
	if (!list && nargs != nargs_one)
		bad_usage("\"%s %s\" needs %s", what, sub, needs);
}

/* check_args validates the positional arguments before any work. */
static void
check_args(char **args, int nargs)
{
	const char *cmd;

	if (nargs == 0)
		bad_usage("no command given");
	cmd = args[0];
	if (opt.json && strcmp(cmd, "status") != 0)
		bad_usage("\"--json\" is only valid for \"status\"");
	if (opt.overlap != NULL && strcmp(cmd, "branch") != 0
	    && strcmp(cmd, "till") != 0)
		bad_usage("\"--overlap\" is only valid for \"branch "
		          "rotate-key\" and \"till rotate-key\"");
	if (!strcmp(cmd, "rejects")) {
		check_rejects(args, nargs);
		return;
	}
	if (!strcmp(cmd, "conflicts")) {
		check_conflicts(args, nargs);
		return;
	}
	if (opt.branch != NULL || opt.by != NULL || opt.all)
		bad_usage("\"--branch\", \"--by\" and \"--all\" are only "
		          "valid for \"rejects\" and \"conflicts\"");
	if (!strcmp(cmd, "branch")) {
		check_keyed(args, nargs, "branch", 2, 3, "exactly one CODE");
		return;
	}
	if (!strcmp(cmd, "till")) {
		check_keyed(
		    args, nargs, "till", 3, 4, "a BRANCH and a TILL code");
		return;
	}
	if (strcmp(cmd, "migrate") && strcmp(cmd, "run")
	    && strcmp(cmd, "status") && strcmp(cmd, "prune"))
		bad_usage("unknown command \"%s\"", cmd);
	if (nargs > 1)
		bad_usage("too many command-line arguments (first is \"%s\")",
		    args[1]);
}

/* run_command runs a command check_args accepted. */
static int
run_command(char **args, int nargs, const hub_config *conf)
{
	if (!strcmp(args[0], "rejects"))
		return cmd_rejects(conf, args, nargs);
	if (!strcmp(args[0], "conflicts"))
		return cmd_conflicts(conf, args);
	if (!strcmp(args[0], "branch"))
		return cmd_branch(conf, args);
	if (!strcmp(args[0], "till"))
		return cmd_till(conf, args, nargs);
	if (!strcmp(args[0], "migrate"))
		return cmd_migrate(conf);
	if (!strcmp(args[0], "run"))
		return cmd_run(conf);
	if (!strcmp(args[0], "prune"))
		return cmd_prune(conf);
	return cmd_status(conf);
}

int
main(int argc, char **argv)
{
	hub_config conf;
	const char *path;
	int rc;

	log_init(PROG, LOG_LVL_INFO);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-?")) {
			usage();
			return 0;
		}
		if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
			printf(PROG " " BS_VERSION "%s\n",
			    fault_enabled() ? " (with fault sites)" : "");
			return 0;
		}
	}
	path = parse_options(argc, argv);
	check_args(argv + optind, argc - optind);
	memset(&conf, 0, sizeof conf);
	load(path, &conf);
	rc = run_command(argv + optind, argc - optind, &conf);
	hub_config_free(&conf);
	return rc;
}
