/*
 * config.h: the agent's configuration file.
 *
 * One [agent] section described by a cfg_key table (see proto/util/cfg.h)
 * and one "[table NAME]" section per replicated table, with an optional
 * "key = a, b" naming the key columns (default: the declared PRIMARY KEY)
 * and an optional "direction = up|down": up (the default) tables are
 * captured and sent to the hub, down tables receive master data from it.
 * The branch secret comes either inline ("key") or from a file ("key_file",
 * first line); exactly one of the two must be set.
 *
 * "http_port" (default 7453, 0 disables it) is the TCP port of the local
 * status listener (see http.h): GET /status and GET /metrics, bound to
 * 127.0.0.1 only. A port that cannot be bound stops "run" at startup.
 *
 * A hub or nudge URL "tls+tcp://host:port" needs "tls_ca" (the CAs that
 * sign the hub's certificate, which must name tls_server_name or the
 * URL's host); "tls_cert" and "tls_key" add a client certificate for a
 * hub that requires one. An inline "key" in a file readable by group or
 * others is warned about (AGENT-KEY-PERMS), as is such a tls_key or
 * key_file.
 *
 * "log_file" sends the log of "run" to a file instead of stderr, rotated
 * before it passes "log_file_max_bytes" (log.h); as a Windows service
 * with no log_file, "run" logs to agent.log beside the default
 * configuration (plat_default_path).
 */
#ifndef AGENT_CONFIG_H
#define AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "proto/msg.h"
#include "tls.h"

#define AGENT_VERSION BS_VERSION

/* The log file of "run": log_file_max_bytes' default, and old files kept. */
#define AGENT_LOG_MAX_BYTES 10485760
#define AGENT_LOG_KEEP      3

/* One "[table NAME]" section. */
typedef struct {
	char *name;    /* table name in the POS file */
	char *key;     /* "a, b" from "key =", or NULL for the PRIMARY KEY */
	char *exclude; /* "a, b" from "exclude =": never sent, or NULL */
	int line;      /* line of the section header, for messages */
	bool down;     /* direction = down: master data from the hub */
} agent_table_config;

typedef struct {
	char *branch;               /* branch code */
	char *till;                 /* till code, or NULL: the branch key */
	char *key;                  /* inline secret, or NULL */
	char *key_file;             /* file holding the secret, or NULL */
	char *database;             /* POS SQLite file */
	char *hub;                  /* comma-separated hub URLs */
	char *nudge;                /* comma-separated hub pub URLs, or NULL */
	int64_t pull_interval_ms;   /* periodic pull (the nudge backstop) */
	int64_t pull_max_rows;      /* changes per CHANGES page asked for */
	int64_t batch_max_events;   /* events per PUSH */
	int64_t batch_max_bytes;    /* approximate value bytes per PUSH */
	int64_t poll_ms;            /* idle poll interval */
	int64_t heartbeat_ms;       /* idle: report to the hub this often */
	int64_t request_timeout_ms; /* wait for an answer this long */
	int64_t backoff_min_ms;     /* first retry delay cap */
	int64_t backoff_max_ms;     /* largest retry delay */
	int64_t busy_timeout_ms;    /* SQLite busy timeout */
	int64_t stall_warning_ms;   /* pending and no ACK this long: warn */
	int64_t outbox_warn_events; /* this many pending events: warn */
	int64_t outbox_warn_age_s;  /* oldest pending this old: warn */
	int64_t http_port;          /* status HTTP on 127.0.0.1, 0 off */
	int64_t max_message_bytes;  /* largest answer from the hub */
	int64_t max_value_bytes;    /* largest value in an answer */
	int64_t max_columns;        /* most columns of a table in an answer */
	char *tls_ca;               /* PEM CAs of the hub's certificate */
	char *tls_cert;             /* PEM client certificate, or NULL */
	char *tls_key;              /* PEM private key of tls_cert */
	char *tls_server_name;      /* expected name; NULL: URL's host */
	char *log_file;             /* run: log file, or NULL: stderr */
	int64_t log_file_max_bytes; /* rotate log_file at this size */
	char *log_level;            /* error|warning|notice|info|debug */
	log_level level;            /* log_level parsed */
	char *secret;               /* the resolved branch secret */
	agent_table_config *tables; /* up and down tables, in file order */
	size_t ntables;             /* number of tables */
} agent_config;

/*
 * agent_config_load reads the file at path into c (which it zeroes first).
 * With need_secret, also resolves the branch secret (reading key_file, warning
 * if that file is readable by others). Returns true on success; otherwise
 * err holds "path:line: reason" or "path: reason" and c is already released
 * (and zeroed). On success release c with agent_config_free.
 */
bool agent_config_load(const char *path, bool need_secret, agent_config *c,
    char *err, size_t errlen);

/* agent_config_limits fills lim with the decoder limits for the hub's answers:
 * max_message_bytes, max_value_bytes, max_columns, and room for a page of
 * pull_max_rows changes; the protocol's defaults for the rest. */
void agent_config_limits(const agent_config *c, proto_limits *lim);

/* agent_config_free frees what agent_config_load stored; safe on a zeroed
 * struct. */
void agent_config_free(agent_config *c);

/* agent_config_find returns the table named name, or NULL (borrowed). */
const agent_table_config *agent_config_find(
    const agent_config *c, const char *name);

/* agent_config_count_down returns how many tables have direction = down. */
size_t agent_config_count_down(const agent_config *c);

/* agent_config_tls_opts fills o from c's TLS keys; o borrows c's strings. */
void agent_config_tls_opts(const agent_config *c, tls_opts *o);

/*
 * agent_config_dial gives sock c's reconnect backoff (backoff_min_ms, _max_ms)
 * and dials every URL of the comma-separated list in the background with
 * c's TLS options (tls_dial_all; what names the list in errors).
 */
proto_err agent_config_dial(nng_socket sock, const agent_config *c,
    const char *list, const char *what, char *err, size_t errlen);

#endif /* AGENT_CONFIG_H */
