/*
 * config.h: the hub's configuration file.
 *
 *   [hub]
 *   listen = tcp://127.0.0.1:7450      ; comma-separated nng URLs
 *   postgres = dbname=branchsync       ; libpq conninfo
 *   workers = 4                        ; nng contexts, one PG connection each
 *   max_message_bytes = 16777216       ; NNG_OPT_RECVMAXSZ and decoder limit
 *   max_batch_events = 10000           ; events in one PUSH
 *   max_columns = 256                  ; columns of one table in a PUSH
 *   max_tables = 64                    ; tables named in one PUSH
 *   max_value_bytes = 1048576          ; one text or binary value
 *   max_pull_rows = 5000               ; most changes in one CHANGES page
 *   publish = tcp://127.0.0.1:7451     ; optional nng pub URLs for nudges
 *   log_level = info
 *   http_listen = 127.0.0.1:7452       ; operator HTTP (page, /metrics,
 *                                      ; /api), host:port; empty = off
 *   behind_events = 10000              ; this many events waiting: behind
 *   behind_seconds = 300               ; oldest waiting this old: behind
 *   silent_seconds = 900               ; not seen for this long: silent
 *   sample_interval_s = 60             ; backlog history step, 1..3600
 *   tls_cert = /etc/branchsync/hub.crt ; PEM; required with tls+tcp://
 *   tls_key = /etc/branchsync/hub.key  ; PEM private key of tls_cert
 *   tls_client_ca = /etc/.../ca.crt    ; optional: require client
 *                                      ; certificates signed by it (every
 *                                      ; listen URL must then be tls+)
 *   accept_plain_keys = false          ; read protocol version 1 (the key
 *                                      ; in clear), for an upgrade only
 *   auth_fail_max = 20                 ; failed authentications from one
 *   auth_fail_window_s = 60            ; address in this window shut it
 *                                      ; out for the window (guard.h)
 *
 *   [table transactions]               ; allow-list, one section per table
 *   target = public.transactions       ; default public.<name>
 *   direction = up                     ; up (default) or down
 *   scope = all                        ; down only: all, or the column of
 *                                      ; target holding the branch id
 *   conflict = overwrite               ; up only: overwrite (default),
 *                                      ; insert_only or last_writer_wins
 *   conflict_column = updated_at       ; last_writer_wins: column compared
 *   branch_column = origin_branch      ; up only: target column holding
 *                                      ; the branch id (default branch_id)
 *   columns = branch_id:branch_code    ; up only: POS column:center column
 *                                      ; renames, comma-separated
 *   till_column = till                 ; up only, optional: a primary key
 *                                      ; column the hub fills with the
 *                                      ; sending till (code or id)
 *
 * Every [hub] key is declared once in the table in config.c; [table NAME]
 * sections go through a callback and a scan of the section headers (an
 * empty section is still an allow-list entry).
 */
#ifndef HUB_CONFIG_H
#define HUB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "proto/err.h"
#include "proto/msg.h"

/* What an up table does when an incoming row's key already exists. */
typedef enum {
	HUB_CONFLICT_OVERWRITE = 0, /* plain upsert: the branch's row wins */
	HUB_CONFLICT_INSERT_ONLY,   /* server row kept; a different row is
	                               recorded as a conflict */
	HUB_CONFLICT_LWW            /* the newer conflict_column wins; the
	                               losing incoming row is recorded */
} hub_conflict_policy;

/* One rename of an up table: a POS column stored under another name. */
typedef struct {
	char *pos;    /* column name as the branch sends it */
	char *center; /* column of the target that stores it */
} hub_col_map;

/* One allow-listed table. */
typedef struct {
	char *name;      /* branch-side table name, as sent in a PUSH */
	char *schema;    /* PostgreSQL schema of the target, e.g. "public" */
	char *relname;   /* PostgreSQL table name of the target */
	char *target;    /* the "target" value as written, or NULL */
	char *direction; /* "up", "down", or NULL for the default (up) */
	char *scope;     /* down only: a column name, or NULL for "all" */
	bool down;       /* direction is "down": head office -> branches */
	char *conflict;  /* "conflict" value as written, or NULL */
	char *conflict_column;      /* last_writer_wins: compared column */
	hub_conflict_policy policy; /* conflict parsed */
	char *branch_column;        /* up: target column set to the branch
	                               id; "branch_id" unless configured */
	char *columns;              /* "columns" value as written, or NULL */
	hub_col_map *colmap;        /* columns parsed, in written order */
	size_t ncolmap;             /* number of renames */
	char *till_column; /* up only: PK column filled with the till, or
	                      NULL: the key does not include the till */
} hub_table_config;

typedef struct {
	char *listen;              /* comma-separated nng URLs */
	char *postgres;            /* libpq conninfo */
	int64_t workers;           /* worker threads (nng ctx + PG conn) */
	int64_t max_message_bytes; /* largest request accepted */
	int64_t max_batch_events;  /* most events in one PUSH */
	int64_t max_columns;       /* most columns per table in one PUSH */
	int64_t max_tables;        /* most tables in one PUSH */
	int64_t max_value_bytes;   /* largest str or bin value */
	int64_t max_pull_rows;     /* most changes in one CHANGES page */
	char *publish;             /* comma-separated nng pub URLs, or NULL */
	char *log_level;           /* error|warning|notice|info|debug */
	log_level level;           /* log_level parsed */
	char **urls;               /* listen split at commas */
	size_t nurls;              /* number of urls */
	char **pub_urls;           /* publish split at commas */
	size_t npub;               /* number of pub_urls; 0 = no nudges */
	char *http_listen;         /* operator HTTP "host:port"; "" = off */
	char *http_allowed_hosts;  /* extra names accepted in Host, or NULL */
	char **http_hosts;         /* http_allowed_hosts, split */
	size_t nhttp_hosts;        /* how many */
	char *http_tls_cert;       /* HTTPS certificate, or NULL */
	char *http_tls_key;        /* its private key */
	char *http_users_file;     /* Basic authentication users, or NULL */
	int64_t behind_events;     /* queue at least this long: behind */
	int64_t behind_seconds;    /* oldest pending this old: behind */
	int64_t silent_seconds;    /* not seen for this long: silent */
	int64_t sample_interval_s; /* seconds between backlog samples */
	int64_t retention_days;    /* resolved rejects/conflicts kept */
	int64_t max_logs_per_branch; /* watermark rows per branch */
	char *tls_cert;              /* PEM certificate of TLS listeners */
	char *tls_key;               /* PEM private key of tls_cert */
	char *tls_client_ca;         /* PEM CAs of client certificates, or
	                                NULL: none asked for */
	hub_table_config *tables;    /* the allow-list, in file order */
	size_t ntables;              /* number of tables */

	/* Authentication (server.c, guard.h). */
	bool accept_plain_keys;     /* read version 1 requests (key in
	                               clear) instead of refusing them */
	int64_t auth_fail_max;      /* failures that shut an address out */
	int64_t auth_fail_window_s; /* their window, and the shut-out */
} hub_config;

/*
 * hub_config_load reads and validates the file at path into conf, which
 * the caller zero-initializes. Returns PROTO_OK, or PROTO_EINVAL with
 * "path:line: reason" (or "path: reason") in err. On success the caller
 * releases conf with hub_config_free; on failure it is already released
 * (and zeroed).
 */
proto_err hub_config_load(
    const char *path, hub_config *conf, char *err, size_t errlen);

/* hub_config_limits fills lim with the decoder limits conf sets for
 * requests (max_message_bytes, max_batch_events, max_columns, max_tables,
 * max_value_bytes), the protocol's defaults for the rest. */
void hub_config_limits(const hub_config *conf, proto_limits *lim);

/* hub_config_free frees what hub_config_load stored; conf may be partial. */
void hub_config_free(hub_config *conf);

/*
 * hub_config_find returns the allow-list entry for a branch-side table
 * name, or NULL. The result is borrowed from conf.
 */
const hub_table_config *hub_config_find(
    const hub_config *conf, const char *name);

/*
 * hub_config_center_col returns the target column that stores POS column
 * pos of table t: its rename from "columns", else pos itself. The result
 * is borrowed from t or pos. It is a name to look up in the catalog, never
 * one to put into SQL as it is.
 */
const char *hub_config_center_col(const hub_table_config *t, const char *pos);

#endif /* HUB_CONFIG_H */
