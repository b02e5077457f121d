/*
 * main.c: command line of branchsync-agent.
 *
 *   init    install the capture log and triggers in the POS file
 *   run     send captured changes to the hub and apply master data from
 *           it until SIGTERM/SIGINT
 *   reload  ask the running agent to pull one down table again in full
 *   status  print the local log's and the downstream state (no network)
 *
 * Exit 0 on success (including a stop by signal), 1 on any error.
 */
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
#include "downstream.h"
#include "inbox.h"
#include "log.h"
#include "outbox.h"
#include "sender.h"
#include "util.h"

#define PROG "branchsync-agent"

typedef struct {
	const char *command; /* init, run, reload or status */
	const char *table;   /* reload: the table */
	const char *config;  /* -c FILE */
	bool wal;            /* --wal */
	bool json;           /* --json */
} cli_opts;

static void
usage(void)
{
	printf("%s sends the changes of a branch's POS database to the "
	       "branchsync hub\nand applies master data from it.\n\n",
	    PROG);
	printf("Usage:\n");
	printf("  %s init -c FILE [--wal]    install the capture log and "
	       "triggers\n",
	    PROG);
	printf("  %s run -c FILE             send changes and receive master "
	       "data until stopped\n",
	    PROG);
	printf(
	    "  %s reload TABLE -c FILE    pull a down table again in full\n",
	    PROG);
	printf("  %s status -c FILE [--json] show the local log\n", PROG);
	printf("\nOptions:\n");
	printf("  -c, --config=FILE  configuration file\n");
	printf("      --wal          init: switch the database to WAL mode\n");
	printf("      --json         status: print one JSON object\n");
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
	if (optind < argc) {
		snprintf(msg, sizeof msg,
		    "too many command-line arguments (first is \"%s\")",
		    argv[optind]);
		bad_usage(msg);
	}
}

static void
check_args(const cli_opts *o)
{
	char msg[300];

	if (strcmp(o->command, "init") && strcmp(o->command, "run")
	    && strcmp(o->command, "status") && strcmp(o->command, "reload")) {
		snprintf(
		    msg, sizeof msg, "unknown command \"%s\"", o->command);
		bad_usage(msg);
	}
	if (o->config == NULL)
		bad_usage("no configuration file specified (-c FILE)");
	if (o->wal && strcmp(o->command, "init"))
		bad_usage("--wal is only valid with \"init\"");
	if (o->json && strcmp(o->command, "status"))
		bad_usage("--json is only valid with \"status\"");
}

static void
load_conf(const cli_opts *o, bool need_secret, agent_conf *conf)
{
	char err[1024];

	if (!config_load(o->config, need_secret, conf, err, sizeof err)) {
		config_free(conf);
		cli_fatal("%s", err);
	}
	log_set_level(conf->level);
}

static int
cmd_init(const cli_opts *o)
{
	agent_conf conf;
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
	sqlite3_close_v2(db);
	if (rv != PROTO_OK) {
		cli_error(
		    "could not initialize \"%s\": %s", conf.database, err);
		config_free(&conf);
		return 1;
	}
	ndown = config_count_down(&conf);
	printf("initialized \"%s\": %zu up tables (%d triggers created, %d "
	       "dropped), %zu down tables%s\n",
	    conf.database, conf.ntables - ndown, res.created, res.dropped,
	    ndown, res.wal ? ", journal_mode=wal" : "");
	config_free(&conf);
	return 0;
}

/* Prints s as a JSON string. */
static void
json_str(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char) *s;
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* The downstream part of status: cursor, last pull, reload. */
static void
print_down(const inbox_state *d, bool json)
{
	if (json) {
		printf(", \"down_cursor\": %" PRId64
		       ", \"last_pull\": %" PRId64 ", \"reload_table\": ",
		    d->down_cursor, d->last_pull);
		if (d->reload_table[0] != '\0')
			json_str(d->reload_table);
		else
			printf("null");
		printf(", \"reload_cursor\": %" PRId64, d->reload_cursor);
		return;
	}
	printf("down_cursor:     %" PRId64 "\n", d->down_cursor);
	if (d->last_pull > 0) {
		char buf[64];
		time_t t = (time_t) d->last_pull;
		strftime(
		    buf, sizeof buf, "%Y-%m-%d %H:%M:%S %z", localtime(&t));
		printf("last_pull:       %s\n", buf);
	} else
		printf("last_pull:       never\n");
	if (d->reload_table[0] != '\0')
		printf("reload:          \"%s\" in progress, cursor %" PRId64
		       "\n",
		    d->reload_table, d->reload_cursor);
	else
		printf("reload:          none\n");
}

static void
print_status(const agent_conf *conf, const char *log_id,
    const outbox_counts *c, const inbox_state *d, bool json)
{
	if (json) {
		printf("{\"branch\": ");
		json_str(conf->branch);
		printf(", \"database\": ");
		json_str(conf->database);
		printf(", \"log_id\": ");
		json_str(log_id);
		printf(", \"acked_seq\": %" PRId64 ", \"high_seq\": %" PRId64
		       ", \"pending_events\": %" PRId64
		       ", \"rejected_events\": %" PRId64,
		    c->acked_seq, c->high_seq, c->pending, c->rejected);
		print_down(d, json);
		printf("}\n");
		return;
	}
	printf("branch:          %s\n", conf->branch);
	printf("database:        %s\n", conf->database);
	printf("log_id:          %s\n", log_id);
	printf("acked_seq:       %" PRId64 "\n", c->acked_seq);
	printf("high_seq:        %" PRId64 "\n", c->high_seq);
	printf("pending_events:  %" PRId64 "\n", c->pending);
	printf("rejected_events: %" PRId64 "\n", c->rejected);
	print_down(d, json);
}

static int
cmd_status(const cli_opts *o)
{
	agent_conf conf;
	outbox *ob = NULL;
	outbox_counts c;
	inbox_state d;
	char err[1024];
	proto_err rv;

	load_conf(o, false, &conf);
	if ((rv = outbox_open(&conf, &ob, err, sizeof err)) == PROTO_OK
	    && (rv = outbox_stats(ob, true, &c, err, sizeof err)) == PROTO_OK
	    && (rv = inbox_state_read(outbox_db(ob), &d, err, sizeof err))
	        == PROTO_OK)
		print_status(&conf, outbox_log_id(ob), &c, &d, o->json);
	else
		cli_error("%s", err);
	outbox_close(ob);
	config_free(&conf);
	return rv == PROTO_OK ? 0 : 1;
}

static int
cmd_run(const cli_opts *o)
{
	agent_conf conf;
	char err[1024];
	proto_err rv;

	downstream *ds = NULL;

	load_conf(o, true, &conf);
	sig_install();
	/* Master data has its own thread, connection and sockets. */
	if ((rv = downstream_start(&conf, &ds, err, sizeof err)) == PROTO_OK) {
		rv = sender_run(&conf, err, sizeof err);
		downstream_stop(ds);
	}
	if (rv != PROTO_OK)
		log_error("AGENT-FATAL", "%s", err);
	config_free(&conf);
	return rv == PROTO_OK ? 0 : 1;
}

/* reload TABLE: the running agent pulls TABLE again from cursor 0. */
static int
cmd_reload(const cli_opts *o)
{
	const agent_table_conf *tc;
	agent_conf conf;
	inbox_state d;
	sqlite3 *db = NULL;
	char err[1024];
	proto_err rv;

	load_conf(o, false, &conf);
	tc = config_find_table(&conf, o->table);
	if (tc == NULL || !tc->down) {
		cli_error(
		    "table \"%s\" is not configured with direction = down "
		    "in \"%s\"",
		    o->table, o->config);
		config_free(&conf);
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
	config_free(&conf);
	return rv == PROTO_OK ? 0 : 1;
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
		printf("%s %s\n", PROG, AGENT_VERSION);
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
	return cmd_run(&o);
}
