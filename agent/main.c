/*
 * main.c: command line of branchsync-agent.
 *
 *   init    install the capture log and triggers in the POS file; with
 *           --initial-load also queue every existing row (sweep.h)
 *   run     send captured changes to the hub and apply master data from
 *           it until SIGTERM/SIGINT; serve GET /status and /metrics on
 *           127.0.0.1:http_port (http.h)
 *   reload  ask the running agent to pull one down table again in full
 *   status  print the queue, the hub's reachability as the running agent
 *           last recorded it, and the downstream state (no network)
 *   sweep   queue the rows with is_synced = 0 that have no log entry
 *   rejects list|retry|discard
 *           show events the hub rejected, send them again, or drop them
 *   service install|uninstall|run
 *           register or remove the Windows service, or be it: "run" under
 *           the Service Control Manager, whose stop request stops it as
 *           SIGTERM does (platform.h)
 *
 * Every command reads the configuration file given with -c, by default
 * plat_default_path("agent.ini").
 *
 * Exit 0 on success (including a stop by signal), 1 on any error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capture.h"
#include "config.h"
#include "db.h"
#include "fault.h"
#include "downstream.h"
#include "http.h"
#include "inbox.h"
#include "log.h"
#include "outbox.h"
#include "platform.h"
#include "rejects.h"
#include "sender.h"
#include "status.h"
#include "sweep.h"
#include "util.h"

#define PROG "branchsync-agent"
/* The Windows service: its name, and what the Services console shows. */
#define SERVICE_NAME    "branchsync-agent"
#define SERVICE_DISPLAY "branchsync agent"
#define SERVICE_DESCRIPTION                                                   \
	"Sends the changes of this branch's POS database to the branchsync "  \
	"hub and applies master data from it."

typedef struct {
	const char *command; /* init, run, reload, status or rejects */
	const char *table;   /* reload: the table */
	const char *action;  /* rejects: list, retry or discard */
	const char *service; /* service: install, uninstall or run */
	char **seqs;         /* rejects retry|discard: the SEQ arguments */
	int nseqs;           /* how many */
	bool all;            /* --all */
	const char *config;  /* -c FILE, or the default */
	bool config_default; /* no -c: config is plat_default_path's */
	bool as_service;     /* run under the Service Control Manager */
	bool wal;            /* --wal */
	bool initial_load;   /* --initial-load */
	bool json;           /* --json */
} cli_opts;

static void
usage(void)
{
	printf("%s sends the changes of a branch's POS database to the "
	       "branchsync hub\nand applies master data from it.\n\n",
	    PROG);
	printf("Usage:\n");
	printf("  %s init [-c FILE] [--wal] [--initial-load]\n"
	       "                             install the capture log and "
	       "triggers\n",
	    PROG);
	printf("  %s run [-c FILE]           send changes and receive master "
	       "data until stopped\n",
	    PROG);
	printf(
	    "  %s reload TABLE [-c FILE]  pull a down table again in full\n",
	    PROG);
	printf("  %s sweep [-c FILE]         queue rows with is_synced = 0 "
	       "that have no log entry\n",
	    PROG);
	printf("  %s status [-c FILE] [--json]\n"
	       "                             show the queue, the hub state "
	       "and master data\n",
	    PROG);
	printf("  %s rejects list [-c FILE] [--json]\n"
	       "                             show events the hub rejected\n",
	    PROG);
	printf("  %s rejects retry SEQ...|--all [-c FILE]\n"
	       "                             send rejected events again\n",
	    PROG);
	printf("  %s rejects discard SEQ...|--all [-c FILE]\n"
	       "                             drop rejected events\n",
	    PROG);
	printf("\nWindows service (as Administrator):\n");
	printf("  %s service install [-c FILE]\n"
	       "                             register the service \"%s\": "
	       "\"run\" with FILE,\n"
	       "                             started with Windows\n",
	    PROG, SERVICE_NAME);
	printf("  %s service uninstall\n"
	       "                             stop the service and remove it\n",
	    PROG);
	printf("  %s service run [-c FILE]\n"
	       "                             what the service runs: \"run\" "
	       "under the Service\n"
	       "                             Control Manager, logging to a "
	       "file\n",
	    PROG);
	printf("\nOptions:\n");
	printf("  -c, --config=FILE  configuration file (default: %s)\n",
	    plat_default_path("agent.ini"));
	printf("      --wal          init: switch the database to WAL mode\n");
	printf("      --initial-load init: also queue every existing row of "
	       "the up tables\n");
	printf("      --json         status, rejects list: print JSON\n");
	printf("      --all          rejects retry|discard: every rejected "
	       "event\n");
	printf("  -?, --help         show this help, then exit\n");
	printf("      --version      output version information, then exit\n");
}

static void __attribute__((noreturn)) bad_usage(const char *msg)
{
	cli_error("%s", msg);
	cli_hint("Try \"%s --help\" for more information.", PROG);
	exit(1);
}

static void
parse_args(int argc, char **argv, cli_opts *o)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"wal", no_argument, NULL, 'W'},
	    {"json", no_argument, NULL, 'J'},
	    {"all", no_argument, NULL, 'A'},
	    {"initial-load", no_argument, NULL, 'L'},
	    {NULL, 0, NULL, 0},
	};
	char msg[300];
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 'W':
			o->wal = true;
			break;
		case 'J':
			o->json = true;
			break;
		case 'A':
			o->all = true;
			break;
		case 'L':
			o->initial_load = true;
			break;
		default:
			snprintf(msg, sizeof msg, "invalid option \"%s\"",
			    argv[optind - 1]);
			bad_usage(msg);
		}
	}
	if (optind >= argc)
		bad_usage("no command specified");
	o->command = argv[optind++];
	if (!strcmp(o->command, "reload")) {
		if (optind >= argc)
			bad_usage("no table specified for \"reload\"");
		o->table = argv[optind++];
	}
	if (!strcmp(o->command, "rejects")) {
		if (optind >= argc)
			bad_usage("no action specified for \"rejects\" (list, "
			          "retry or discard)");
		o->action = argv[optind++];
		o->seqs = &argv[optind];
		o->nseqs = argc - optind;
		optind = argc;
	}
	if (!strcmp(o->command, "service")) {
		if (optind >= argc)
			bad_usage("no action specified for \"service\" "
			          "(install, uninstall or run)");
		o->service = argv[optind++];
	}
	if (optind < argc) {
		snprintf(msg, sizeof msg,
		    "too many command-line arguments (first is \"%s\")",
		    argv[optind]);
		bad_usage(msg);
	}
	if (o->config == NULL) {
		static char def[1024];
		snprintf(
		    def, sizeof def, "%s", plat_default_path("agent.ini"));
		o->config = def;
		o->config_default = true;
	}
}

static void
check_args(const cli_opts *o)
{
	char msg[300];

	if (strcmp(o->command, "init") && strcmp(o->command, "run")
	    && strcmp(o->command, "status") && strcmp(o->command, "reload")
	    && strcmp(o->command, "rejects") && strcmp(o->command, "sweep")
	    && strcmp(o->command, "service")) {
		snprintf(
		    msg, sizeof msg, "unknown command \"%s\"", o->command);
		bad_usage(msg);
	}
	if (o->service != NULL && strcmp(o->service, "install")
	    && strcmp(o->service, "uninstall") && strcmp(o->service, "run")) {
		snprintf(msg, sizeof msg,
		    "unknown action \"%s\" for \"service\" (install, "
		    "uninstall or run)",
		    o->service);
		bad_usage(msg);
	}
	if (o->wal && strcmp(o->command, "init"))
		bad_usage("--wal is only valid with \"init\"");
	if (o->initial_load && strcmp(o->command, "init"))
		bad_usage("--initial-load is only valid with \"init\"");
	if (o->json && strcmp(o->command, "status")
	    && (o->action == NULL || strcmp(o->action, "list")))
		bad_usage("--json is only valid with \"status\" and "
		          "\"rejects list\"");
	if (o->action == NULL)
		goto no_rejects;
	if (strcmp(o->action, "list") && strcmp(o->action, "retry")
	    && strcmp(o->action, "discard")) {
		snprintf(msg, sizeof msg,
		    "unknown action \"%s\" for \"rejects\" (list, retry or "
		    "discard)",
		    o->action);
		bad_usage(msg);
	}
	if (!strcmp(o->action, "list") && (o->nseqs > 0 || o->all))
		bad_usage("\"rejects list\" takes no SEQ and no --all");
	if (strcmp(o->action, "list") && (o->nseqs > 0) == o->all) {
		snprintf(msg, sizeof msg,
		    "\"rejects %s\" needs either SEQ... or --all", o->action);
		bad_usage(msg);
	}
	for (int i = 0; i < o->nseqs; i++) {
		char *end;
		long long v = strtoll(o->seqs[i], &end, 10);
		if (end == o->seqs[i] || *end != '\0' || v <= 0) {
			snprintf(
			    msg, sizeof msg, "invalid seq \"%s\"", o->seqs[i]);
			bad_usage(msg);
		}
	}
	return;
no_rejects:
	if (o->all)
		bad_usage("--all is only valid with \"rejects\"");
}

/* config_missing: no -c was given and the default file does not exist. */
static bool
config_missing(const cli_opts *o)
{
	FILE *f;

	if (!o->config_default)
		return false;
	if ((f = fopen(o->config, "r")) != NULL) {
		fclose(f);
		return false;
	}
	return errno == ENOENT;
}

/* config_load reads the configuration file of o into conf (config.h). */
static bool
config_load(const cli_opts *o, bool need_secret, agent_config *conf, char *err,
    size_t errlen)
{
	if (config_missing(o)) {
		memset(conf, 0, sizeof *conf);
		snprintf(err, errlen,
		    "no configuration file specified, and the default \"%s\" "
		    "does not exist",
		    o->config);
		return false;
	}
	return agent_config_load(o->config, need_secret, conf, err, errlen);
}

/* config_error prints why the configuration could not be loaded. */
static void
config_error(const cli_opts *o, const char *msg)
{
	cli_error("%s", msg);
	if (config_missing(o))
		cli_hint("Give the configuration file with -c FILE.");
}

static void
load_conf(const cli_opts *o, bool need_secret, agent_config *conf)
{
	char err[1024];

	if (!config_load(o, need_secret, conf, err, sizeof err)) {
		config_error(o, err);
		exit(1);
	}
	log_set_level(conf->level);
}

static proto_err queue_all(
    sqlite3 *db, const agent_config *conf, sweep_mode mode);

static int
cmd_init(const cli_opts *o)
{
	agent_config conf;
	capture_result res;
	sqlite3 *db = NULL;
	inbox *ib = NULL;
	char err[1024];
	size_t ndown;
	proto_err rv;

	load_conf(o, false, &conf);
	if ((rv = db_open(
	         conf.database, conf.busy_timeout_ms, &db, err, sizeof err))
	        == PROTO_OK
	    /* Down tables must exist with a key, as at "run". */
	    && (rv = inbox_open(db, &conf, &ib, err, sizeof err)) == PROTO_OK)
		rv = capture_install(db, &conf, o->wal, &res, err, sizeof err);
	inbox_close(ib);
	if (rv != PROTO_OK) {
		cli_error(
		    "could not initialize \"%s\": %s", conf.database, err);
		sqlite3_close_v2(db);
		agent_config_free(&conf);
		return 1;
	}
	ndown = agent_config_count_down(&conf);
	printf("initialized \"%s\": %zu up tables (%d triggers created, %d "
	       "dropped), %zu down tables%s\n",
	    conf.database, conf.ntables - ndown, res.created, res.dropped,
	    ndown, res.wal ? ", journal_mode=wal" : "");
	fflush(stdout);
	rv = o->initial_load ? queue_all(db, &conf, SWEEP_ALL) : PROTO_OK;
	sqlite3_close_v2(db);
	agent_config_free(&conf);
	return rv == PROTO_OK ? 0 : 1;
}

/* Progress of a sweep on stderr: at most once a second, and at the end. */
typedef struct {
	int64_t next_ms;  /* monotonic: next line due */
	const char *verb; /* "initial load" or "sweep" */
} progress_state;

static void
progress_cb(void *arg, const char *table, int64_t checked, int64_t total,
    int64_t queued)
{
	progress_state *p = arg;

	if (checked < total && plat_mono_ms() < p->next_ms)
		return;
	p->next_ms = plat_mono_ms() + 1000;
	fprintf(stderr,
	    "%s: %s of \"%s\": queued %" PRId64 " rows, %" PRId64
	    " of %" PRId64 " checked\n",
	    PROG, p->verb, table, queued, checked, total);
}

/*
 * queue_one queues table tc's rows for mode; a table that is done clears
 * its marks: every row is now in the log (SWEEP_ALL), or every unsynced
 * one is.
 */
static proto_err
queue_one(sqlite3 *db, const agent_table_config *tc, sweep_mode mode,
    progress_state *ps, int64_t *queued, char *err, size_t errlen)
{
	capture_table t;
	proto_err rv;

	if ((rv = capture_describe(db, tc, &t, err, errlen)) != PROTO_OK)
		return rv;
	if (mode == SWEEP_ALL || t.has_synced)
		rv = sweep_table(
		    db, &t, mode, progress_cb, ps, queued, err, errlen);
	if (rv == PROTO_OK && (mode == SWEEP_ALL || t.has_synced))
		rv = sweep_mark_clear(db, "sweep", t.name, err, errlen);
	if (rv == PROTO_OK && mode == SWEEP_ALL)
		rv = sweep_mark_clear(db, "unchecked", t.name, err, errlen);
	capture_table_fini(&t);
	return rv;
}

/* queue_all runs queue_one over the up tables, in file order. */
static proto_err
queue_all(sqlite3 *db, const agent_config *conf, sweep_mode mode)
{
	progress_state ps = {0, mode == SWEEP_ALL ? "initial load" : "sweep"};
	int64_t total = 0, n, hi = 0;
	char err[1024];
	proto_err rv = PROTO_OK;
	bool failed = false;
	sqlite3_stmt *st;

	/* The log's end now: what was captured before moves behind. */
	if (sqlite3_prepare_v2(db,
	        "SELECT coalesce(max(seq), 0) FROM _branchsync_log", -1, &st,
	        NULL)
	        == SQLITE_OK
	    && sqlite3_step(st) == SQLITE_ROW)
		hi = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	plat_sig_install(); /* a stop between batches leaves them committed */
	for (size_t i = 0; i < conf->ntables && rv == PROTO_OK; i++) {
		if (conf->tables[i].down)
			continue;
		n = 0;
		rv = queue_one(
		    db, &conf->tables[i], mode, &ps, &n, err, sizeof err);
		total += n;
		/* sweep: a table that cannot be captured does not stop the
		 * others (init checked every table before). */
		if (rv == PROTO_EINVAL && mode == SWEEP_UNSYNCED) {
			cli_error("skipped table \"%s\": %s",
			    conf->tables[i].name, err);
			rv = PROTO_OK;
			failed = true;
		}
		if (plat_stop_requested() && rv == PROTO_OK) {
			snprintf(err, sizeof err,
			    "interrupted; run it again to go on");
			rv = PROTO_ECLOSED;
		}
	}
	/* Also when interrupted: the queued batches are committed. The
	 * running agent moves the entries at its next safe point. */
	if (total > 0) {
		char err2[512];
		if (sweep_move_request(db, hi, err2, sizeof err2) != PROTO_OK
		    && rv == PROTO_OK) {
			snprintf(err, sizeof err, "%s", err2);
			rv = PROTO_EDB;
		}
	}
	if (rv != PROTO_OK)
		cli_error("could not queue the rows of \"%s\" (%" PRId64
		          " queued): %s",
		    conf->database, total, err);
	else
		printf("queued %" PRId64 " rows of \"%s\"\n", total,
		    conf->database);
	return rv == PROTO_OK && failed ? PROTO_EINVAL : rv;
}

/* sweep: queue unsynced rows without a log entry, beside a running agent. */
static int
cmd_sweep(const cli_opts *o)
{
	agent_config conf;
	outbox *ob = NULL;
	char err[1024];
	proto_err rv;

	load_conf(o, false, &conf);
	/* outbox_open checks that init was run. */
	if ((rv = outbox_open(&conf, &ob, err, sizeof err)) != PROTO_OK)
		cli_error("%s", err);
	else
		rv = queue_all(outbox_db(ob), &conf, SWEEP_UNSYNCED);
	outbox_close(ob);
	agent_config_free(&conf);
	return rv == PROTO_OK ? 0 : 1;
}

/* Prints s as a JSON string. */
/*
 * json_utf8 prints s for a JSON document: bytes that are not UTF-8 (the
 * POS may store any bytes as TEXT) become \ufffd, so the output always
 * parses. With esc, s is a string's content: quotes, backslashes and
 * control characters are escaped; without, s is JSON already (a key
 * array) and only its invalid bytes, which can only be inside strings,
 * are replaced.
 */
static void
json_utf8(const char *s, bool esc)
{
	const uint8_t *u = (const uint8_t *) s;
	size_t n = strlen(s);

	for (size_t i = 0; i < n;) {
		size_t len = proto_utf8_len(u + i, n - i);
		if (len == 0) {
			fputs("\\ufffd", stdout);
			i++;
		} else if (esc && (u[i] == '"' || u[i] == '\\')) {
			printf("\\%c", u[i++]);
		} else if (esc && u[i] < 0x20) {
			printf("\\u%04x", u[i++]);
		} else {
			fwrite(u + i, 1, len, stdout);
			i += len;
		}
	}
}

static void
json_str(const char *s)
{
	putchar('"');
	json_utf8(s, true);
	putchar('"');
}

/* status: one read of the POS file, printed as text or JSON. */
static int
cmd_status(const cli_opts *o)
{
	agent_config conf;
	outbox *ob = NULL;
	agent_status st;
	char err[1024], *json;
	proto_err rv;

	load_conf(o, false, &conf);
	/* outbox_open checks that init was run and the log is current. */
	if ((rv = outbox_open(&conf, &ob, err, sizeof err)) == PROTO_OK
	    && (rv = status_collect(
	            outbox_db(ob), &conf, NULL, &st, err, sizeof err))
	        == PROTO_OK) {
		if (o->json) {
			json = status_json_text(&conf, &st);
			printf("%s\n", json);
			free(json);
		} else
			status_print(stdout, &conf, &st);
	} else
		cli_error("%s", err);
	outbox_close(ob);
	agent_config_free(&conf);
	return rv == PROTO_OK ? 0 : 1;
}

static const char *
op_name(int op)
{
	return op == 1 ? "insert"
	    : op == 2  ? "update"
	    : op == 3  ? "delete"
	               : "?";
}

static void
print_rejects(const rejects_entry *r, size_t n, bool json)
{
	if (json) {
		printf("[");
		for (size_t i = 0; i < n; i++) {
			printf("%s{\"seq\": %" PRId64 ", \"table\": ",
			    i ? ", " : "", r[i].seq);
			json_str(r[i].table);
			printf(
			    ", \"op\": \"%s\", \"key\": ", op_name(r[i].op));
			r[i].key ? json_utf8(r[i].key, false)
			         : (void) printf("null");
			printf(", \"state\": \"%s\", \"reason\": ",
			    r[i].retry ? "retry" : "rejected");
			r[i].reason ? json_str(r[i].reason)
			            : (void) printf("null");
			printf(", \"ts\": ");
			r[i].ts > 0 ? printf("%" PRId64, r[i].ts)
			            : printf("null");
			printf("}");
		}
		printf("]\n");
		return;
	}
	if (n == 0) {
		printf("no rejected events\n");
		return;
	}
	cli_printf(stdout, "%-10s %-20s %-6s %-20s %-8s %s\n", "seq", "table",
	    "op", "key", "state", "reason");
	for (size_t i = 0; i < n; i++)
		cli_printf(stdout, "%-10" PRId64 " %-20s %-6s %-20s %-8s %s\n",
		    r[i].seq, r[i].table, op_name(r[i].op),
		    r[i].key ? r[i].key : "",
		    r[i].retry ? "retry" : "rejected",
		    r[i].reason ? r[i].reason : "");
}

/* rejects list|retry|discard: short transactions, beside a running agent. */
static int
cmd_rejects(const cli_opts *o)
{
	agent_config conf;
	outbox *ob = NULL;
	rejects_entry *r = NULL;
	int64_t *seqs = NULL, changed = 0;
	size_t n = 0;
	char err[1024];
	proto_err rv;
	bool list = !strcmp(o->action, "list"),
	     retry = !strcmp(o->action, "retry");

	load_conf(o, false, &conf);
	if (o->nseqs > 0) {
		seqs = xcalloc((size_t) o->nseqs, sizeof *seqs);
		for (int i = 0; i < o->nseqs; i++)
			seqs[i] = strtoll(o->seqs[i], NULL, 10);
	}
	if ((rv = outbox_open(&conf, &ob, err, sizeof err)) != PROTO_OK)
		;
	else if (list
	    && (rv = rejects_list(ob, &r, &n, err, sizeof err)) == PROTO_OK)
		print_rejects(r, n, o->json);
	else if (!list)
		rv = (retry ? rejects_retry : rejects_discard)(outbox_db(ob),
		    seqs, (size_t) o->nseqs, true, &changed, err, sizeof err);
	if (rv != PROTO_OK)
		cli_error("%s", err);
	else if (!list)
		printf("%" PRId64 " rejected events %s\n", changed,
		    retry ? "marked for retry; the running agent sends them "
		            "again"
		          : "discarded");
	rejects_list_free(r, n);
	free(seqs);
	outbox_close(ob);
	agent_config_free(&conf);
	return rv == PROTO_OK ? 0 : 1;
}

/*
 * run_fail reports why "run" cannot start: on stderr, or as a service
 * (which has no stderr) in the default log file.
 */
static void
run_fail(const cli_opts *o, const char *msg)
{
	char err[1024];

	if (!o->as_service) {
		config_error(o, msg);
		return;
	}
	if (!log_file_open(plat_default_path("agent.log"), AGENT_LOG_MAX_BYTES,
	        AGENT_LOG_KEEP, err, sizeof err))
		return; /* nowhere to say it; the service stops with code 1 */
	log_error("AGENT-FATAL", "%s", msg);
}

/*
 * run_start loads the configuration of "run" into conf and sends the log
 * to log_file, or as a service with no log_file to the default agent.log.
 * Returns false, with the reason reported, if it cannot start.
 */
static bool
run_start(const cli_opts *o, agent_config *conf)
{
	const char *file;
	char err[1024];

	if (!config_load(o, true, conf, err, sizeof err)) {
		run_fail(o, err);
		return false;
	}
	log_set_level(conf->level);
	file = conf->log_file;
	if (file == NULL && o->as_service)
		file = plat_default_path("agent.log");
	if (file != NULL
	    && !log_file_open(file, conf->log_file_max_bytes, AGENT_LOG_KEEP,
	        err, sizeof err)) {
		run_fail(o, err);
		agent_config_free(conf);
		return false;
	}
	return true;
}

static int
cmd_run(const cli_opts *o)
{
	agent_config conf;
	char err[1024];
	proto_err rv;

	downstream *ds = NULL;
	agent_http *http = NULL;

	if (!run_start(o, &conf))
		return 1;
	plat_sig_install();
	/* Master data has its own thread, connection and sockets. */
	if ((rv = downstream_start(&conf, &ds, err, sizeof err)) == PROTO_OK) {
		/* Status over HTTP once the POS file opened; port in use
		 * is a startup error like any other. */
		if ((rv = agent_http_start(&conf, &http, err, sizeof err))
		    == PROTO_OK)
			rv = sender_run(&conf, err, sizeof err);
		agent_http_stop(http);
		downstream_stop(ds);
	}
	/*
	 * Every socket is closed and every thread that used nng has ended:
	 * let nng finish tearing down the connections it still holds (a
	 * request sent on a pipe that a hub's crash closed), so nothing is
	 * left for the leak checker at exit.
	 */
	plat_nng_fini();
	if (rv != PROTO_OK)
		log_error("AGENT-FATAL", "%s", err);
	agent_config_free(&conf);
	return rv == PROTO_OK ? 0 : 1;
}

/* reload TABLE: the running agent pulls TABLE again from cursor 0. */
static int
cmd_reload(const cli_opts *o)
{
	const agent_table_config *tc;
	agent_config conf;
	inbox_state d;
	sqlite3 *db = NULL;
	char err[1024];
	proto_err rv;

	load_conf(o, false, &conf);
	tc = agent_config_find(&conf, o->table);
	if (tc == NULL || !tc->down) {
		cli_error(
		    "table \"%s\" is not configured with direction = down "
		    "in \"%s\"",
		    o->table, o->config);
		agent_config_free(&conf);
		return 1;
	}
	if ((rv = db_open(
	         conf.database, conf.busy_timeout_ms, &db, err, sizeof err))
	        == PROTO_OK
	    && (rv = inbox_state_read(db, &d, err, sizeof err)) == PROTO_OK) {
		if (d.log_id[0] == '\0') {
			snprintf(err, sizeof err,
			    "database \"%s\" is not set up; run "
			    "\"branchsync-agent init\" first",
			    conf.database);
			rv = PROTO_EINVAL;
		} else
			rv = inbox_reload_request(
			    db, o->table, err, sizeof err);
	}
	sqlite3_close_v2(db);
	if (rv == PROTO_OK)
		printf(
		    "reload of \"%s\" requested; the running agent pulls it "
		    "in full\n",
		    o->table);
	else
		cli_error("%s", err);
	agent_config_free(&conf);
	return rv == PROTO_OK ? 0 : 1;
}

/* service_run_cb is what the service does: "run" (cli_opts *arg). */
static int
service_run_cb(void *arg)
{
	return cmd_run(arg);
}

/*
 * service install: the service runs "service run -c FILE" with FILE made
 * absolute (a service starts in the system folder). The file is read
 * when the service starts; it is loaded here too, to warn at once.
 */
static int
service_install(const cli_opts *o)
{
	char path[1024], args[1100], err[1024];
	cli_opts co = {.config = path};
	agent_config conf;

	if (!plat_absolute_path(o->config, path, sizeof path)) {
		cli_error(
		    "could not find the absolute path of \"%s\"", o->config);
		return 1;
	}
	if ((size_t) snprintf(args, sizeof args, "service run -c \"%s\"", path)
	    >= sizeof args) {
		cli_error("configuration file name \"%s\" is too long", path);
		return 1;
	}
	if (plat_service_install(SERVICE_NAME, SERVICE_DISPLAY,
	        SERVICE_DESCRIPTION, args, err, sizeof err)
	    != PROTO_OK) {
		cli_error("%s", err);
		return 1;
	}
	printf("service \"%s\" installed, with configuration file \"%s\"\n",
	    SERVICE_NAME, path);
	if (!config_load(&co, false, &conf, err, sizeof err)) {
		cli_warning("the service cannot start yet: %s", err);
		cli_hint("Fix the configuration file, then start the service "
		         "with \"sc start %s\".",
		    SERVICE_NAME);
		return 0;
	}
	agent_config_free(&conf);
	return 0;
}

/* service install|uninstall|run: the Windows service (platform.h). */
static int
cmd_service(const cli_opts *o)
{
	cli_opts so = *o;
	char err[1024];
	int rc;

	if (!strcmp(o->service, "install"))
		return service_install(o);
	if (!strcmp(o->service, "uninstall")) {
		if (plat_service_uninstall(SERVICE_NAME, err, sizeof err)
		    != PROTO_OK) {
			cli_error("%s", err);
			return 1;
		}
		printf("service \"%s\" stopped and removed\n", SERVICE_NAME);
		return 0;
	}
	/* run: its own log file, since a service's stderr goes nowhere */
	so.as_service = true;
	if ((rc = plat_service_run(
	         SERVICE_NAME, service_run_cb, &so, err, sizeof err))
	    < 0) {
		cli_error("%s", err);
		return 1;
	}
	return rc;
}

int
main(int argc, char **argv)
{
	cli_opts o = {0};

	log_init(PROG, LOG_LVL_INFO);
	if (argc > 1
	    && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-?"))) {
		usage();
		return 0;
	}
	if (argc > 1
	    && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))) {
		printf("%s %s%s\n", PROG, AGENT_VERSION,
		    fault_enabled() ? " (with fault sites)" : "");
		return 0;
	}
	parse_args(argc, argv, &o);
	check_args(&o);
	if (!strcmp(o.command, "init"))
		return cmd_init(&o);
	if (!strcmp(o.command, "status"))
		return cmd_status(&o);
	if (!strcmp(o.command, "reload"))
		return cmd_reload(&o);
	if (!strcmp(o.command, "rejects"))
		return cmd_rejects(&o);
	if (!strcmp(o.command, "sweep"))
		return cmd_sweep(&o);
	if (!strcmp(o.command, "service"))
		return cmd_service(&o);
	return cmd_run(&o);
}
