/*
 * main.c: command line of branchsync-agent.
 *
 *   init    install the capture log and triggers in the POS file
 *   run     send captured changes to the hub until SIGTERM/SIGINT
 *   status  print the local log's state (no network)
 *
 * Exit 0 on success (including a stop by signal), 1 on any error.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "outbox.h"
#include "sender.h"
#include "util.h"

#define PROG "branchsync-agent"

typedef struct {
	const char *command; /* init, run or status */
	const char *config;  /* -c FILE */
	bool wal;            /* --wal */
	bool json;           /* --json */
} cli_opts;

static void
usage(void)
{
	printf("%s sends the changes of a branch's POS database to the "
	       "branchsync hub.\n\n",
	    PROG);
	printf("Usage:\n");
	printf("  %s init -c FILE [--wal]    install the capture log and "
	       "triggers\n",
	    PROG);
	printf(
	    "  %s run -c FILE             send changes until stopped\n", PROG);
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
	    && strcmp(o->command, "status")) {
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
	char err[1024];
	proto_err rv;

	load_conf(o, false, &conf);
	if ((rv = db_open(
	         conf.database, conf.busy_timeout_ms, &db, err, sizeof err))
	    == PROTO_OK)
		rv = capture_install(db, &conf, o->wal, &res, err, sizeof err);
	sqlite3_close_v2(db);
	if (rv != PROTO_OK) {
		cli_error(
		    "could not initialize \"%s\": %s", conf.database, err);
		config_free(&conf);
		return 1;
	}
	printf("initialized \"%s\": %zu tables, %d triggers created, %d "
	       "dropped%s\n",
	    conf.database, conf.ntables, res.created, res.dropped,
	    res.wal ? ", journal_mode=wal" : "");
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

static void
print_status(const agent_conf *conf, const char *log_id,
    const outbox_counts *c, bool json)
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
		       ", \"rejected_events\": %" PRId64 "}\n",
		    c->acked_seq, c->high_seq, c->pending, c->rejected);
		return;
	}
	printf("branch:          %s\n", conf->branch);
	printf("database:        %s\n", conf->database);
	printf("log_id:          %s\n", log_id);
	printf("acked_seq:       %" PRId64 "\n", c->acked_seq);
	printf("high_seq:        %" PRId64 "\n", c->high_seq);
	printf("pending_events:  %" PRId64 "\n", c->pending);
	printf("rejected_events: %" PRId64 "\n", c->rejected);
}

static int
cmd_status(const cli_opts *o)
{
	agent_conf conf;
	outbox *ob = NULL;
	outbox_counts c;
	char err[1024];
	proto_err rv;

	load_conf(o, false, &conf);
	if ((rv = outbox_open(&conf, &ob, err, sizeof err)) == PROTO_OK
	    && (rv = outbox_stats(ob, true, &c, err, sizeof err)) == PROTO_OK)
		print_status(&conf, outbox_log_id(ob), &c, o->json);
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

	load_conf(o, true, &conf);
	sig_install();
	if ((rv = sender_run(&conf, err, sizeof err)) != PROTO_OK)
		log_error("AGENT-FATAL", "%s", err);
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
	return cmd_run(&o);
}
