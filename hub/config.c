/*
 * config.c: the hub's key table, the [table NAME] allow-list sections and
 * the checks that need more than one key.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "tls.h"
#include "util.h"

#define TABLE_PREFIX "table "

/* Alphabetical within the section, like pgbouncer's table. */
static const cfg_key hub_keys[] = {
    {"hub", "accept_plain_keys", CFG_BOOL,
        offsetof(hub_config, accept_plain_keys), "false", 0, 0, 0,
        "accept protocol version 1, whose requests carry the branch key "
        "in clear (while agents are upgraded)"},
    {"hub", "auth_fail_max", CFG_INT, offsetof(hub_config, auth_fail_max),
        "20", 1, 1000000, 0,
        "failed authentications from one address that close its "
        "connections"},
    {"hub", "auth_fail_window_s", CFG_INT,
        offsetof(hub_config, auth_fail_window_s), "60", 1, 86400, 0,
        "window of auth_fail_max, and how long an address stays shut out"},
    {"hub", "behind_events", CFG_INT, offsetof(hub_config, behind_events),
        "10000", 1, INT64_C(1000000000000), 0,
        "a branch with this many events waiting is behind"},
    {"hub", "behind_seconds", CFG_INT, offsetof(hub_config, behind_seconds),
        "300", 1, 31536000, 0,
        "a branch whose oldest waiting event is this old is behind"},
    {"hub", "http_allowed_hosts", CFG_STR,
        offsetof(hub_config, http_allowed_hosts), NULL, 0, 0, 0,
        "host names the operator listener answers for, besides addresses "
        "and localhost"},
    {"hub", "http_listen", CFG_STR, offsetof(hub_config, http_listen),
        "127.0.0.1:7452", 0, 0, 0,
        "operator HTTP listener, host:port; empty disables it"},
    {"hub", "http_tls_cert", CFG_STR, offsetof(hub_config, http_tls_cert),
        NULL, 0, 0, 0,
        "PEM certificate: serve the operator listener over "
        "HTTPS"},
    {"hub", "http_tls_key", CFG_STR, offsetof(hub_config, http_tls_key), NULL,
        0, 0, 0, "PEM private key of http_tls_cert"},
    {"hub", "http_users_file", CFG_STR, offsetof(hub_config, http_users_file),
        NULL, 0, 0, 0,
        "user:crypt-hash lines; the operator listener then asks for "
        "Basic authentication"},
    {"hub", "listen", CFG_STR, offsetof(hub_config, listen), NULL, 0, 0,
        CFG_REQUIRED, "comma-separated nng URLs to listen on"},
    {"hub", "log_level", CFG_STR, offsetof(hub_config, log_level), "info", 0,
        0, 0, "error, warning, notice, info or debug"},
    {"hub", "max_batch_events", CFG_INT,
        offsetof(hub_config, max_batch_events), "10000", 1, 100000, 0,
        "most events accepted in one PUSH"},
    {"hub", "max_columns", CFG_INT, offsetof(hub_config, max_columns), "256",
        1, 1600, 0, "most columns of one table in a PUSH"},
    {"hub", "max_logs_per_branch", CFG_INT,
        offsetof(hub_config, max_logs_per_branch), "64", 1, 100000, 0,
        "most logs (POS files set up with init) one branch keeps"},
    {"hub", "max_message_bytes", CFG_INT,
        offsetof(hub_config, max_message_bytes), "16777216", 65536, 268435456,
        0, "largest request accepted, bytes"},
    {"hub", "max_pull_rows", CFG_INT, offsetof(hub_config, max_pull_rows),
        "5000", 1, 100000, 0, "most changes in one CHANGES page"},
    {"hub", "max_tables", CFG_INT, offsetof(hub_config, max_tables), "64", 1,
        1024, 0, "most tables named in one PUSH"},
    {"hub", "max_value_bytes", CFG_INT, offsetof(hub_config, max_value_bytes),
        "1048576", 1, 268435456, 0,
        "largest text or binary value accepted, bytes"},
    {"hub", "postgres", CFG_STR, offsetof(hub_config, postgres), NULL, 0, 0,
        CFG_REQUIRED, "libpq connection string"},
    {"hub", "publish", CFG_STR, offsetof(hub_config, publish), NULL, 0, 0, 0,
        "comma-separated nng pub URLs for nudges"},
    {"hub", "retention_days", CFG_INT, offsetof(hub_config, retention_days),
        "90", 1, 36500, 0, "days resolved rejects and conflicts are kept"},
    {"hub", "sample_interval_s", CFG_INT,
        offsetof(hub_config, sample_interval_s), "60", 1, 3600, 0,
        "seconds between two backlog samples (history resolution)"},
    {"hub", "silent_seconds", CFG_INT, offsetof(hub_config, silent_seconds),
        "900", 1, 31536000, 0, "a branch not seen for this long is silent"},
    {"hub", "tls_cert", CFG_STR, offsetof(hub_config, tls_cert), NULL, 0, 0, 0,
        "PEM certificate (chain) of tls+tcp:// listeners"},
    {"hub", "tls_client_ca", CFG_STR, offsetof(hub_config, tls_client_ca),
        NULL, 0, 0, 0, "PEM CAs: require client certificates signed by them"},
    {"hub", "tls_key", CFG_STR, offsetof(hub_config, tls_key), NULL, 0, 0, 0,
        "PEM private key of tls_cert"},
    {"hub", "workers", CFG_INT, offsetof(hub_config, workers), "4", 1, 64, 0,
        "worker threads, each with its own PostgreSQL connection"},
};

const hub_table_config *
hub_config_find(const hub_config *conf, const char *name)
{
	for (size_t i = 0; i < conf->ntables; i++)
		if (!strcmp(conf->tables[i].name, name))
			return &conf->tables[i];
	return NULL;
}

const char *
hub_config_center_col(const hub_table_config *t, const char *pos)
{
	for (size_t i = 0; t != NULL && i < t->ncolmap; i++)
		if (!strcmp(t->colmap[i].pos, pos))
			return t->colmap[i].center;
	return pos;
}

/* trim returns s without leading and trailing blanks, cut in place. */
static char *
trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

/*
 * colmap_add checks one "pos:center" entry of "columns" and appends it to
 * t's renames: both names non-empty, each named once in the list.
 */
static bool
colmap_add(hub_table_config *t, char *entry, const char *section, char *err,
    size_t errlen)
{
	char *colon = strchr(entry, ':'), *pos, *center;

	if (colon == NULL) {
		snprintf(err, errlen,
		    "invalid \"columns\" entry \"%s\" in [%s]: expected "
		    "\"pos_column:center_column\"",
		    trim(entry), section);
		return false;
	}
	*colon = '\0';
	pos = trim(entry);
	center = trim(colon + 1);
	if (pos[0] == '\0' || center[0] == '\0' || strchr(center, ':')) {
		snprintf(err, errlen,
		    "invalid \"columns\" entry \"%s:%s\" in [%s]: expected "
		    "\"pos_column:center_column\"",
		    pos, center, section);
		return false;
	}
	for (size_t i = 0; i < t->ncolmap; i++)
		if (!strcmp(t->colmap[i].pos, pos)
		    || !strcmp(t->colmap[i].center, center)) {
			snprintf(err, errlen,
			    "column \"%s\" is named twice in \"columns\" "
			    "of [%s]",
			    !strcmp(t->colmap[i].pos, pos) ? pos : center,
			    section);
			return false;
		}
	t->colmap = xrealloc(t->colmap, (t->ncolmap + 1) * sizeof *t->colmap);
	t->colmap[t->ncolmap++]
	    = (hub_col_map) {xstrdup(pos), xstrdup(center)};
	return true;
}

/* colmap_parse parses "columns": comma-separated "pos:center" renames. */
static bool
colmap_parse(hub_table_config *t, const char *value, const char *section,
    char *err, size_t errlen)
{
	char *copy = xstrdup(value), *p = copy, *comma;
	bool ok = true;

	do {
		if ((comma = strchr(p, ',')) != NULL)
			*comma = '\0';
		ok = colmap_add(t, p, section, err, errlen);
		p = comma + 1;
	} while (ok && comma != NULL);
	free(copy);
	return ok;
}

/* table_get returns the entry for name, appending it if new. */
static hub_table_config *
table_get(hub_config *conf, const char *name)
{
	hub_table_config *t;

	for (size_t i = 0; i < conf->ntables; i++)
		if (!strcmp(conf->tables[i].name, name))
			return &conf->tables[i];
	conf->tables = xrealloc(
	    conf->tables, (conf->ntables + 1) * sizeof *conf->tables);
	t = &conf->tables[conf->ntables++];
	memset(t, 0, sizeof *t);
	t->name = xstrdup(name);
	return t;
}

/* Called by cfg_load for "name = value" in sections not in hub_keys. */
static bool
on_section(void *vconf, const char *section, const char *name,
    const char *value, char *err, size_t errlen)
{
	hub_config *conf = vconf;
	hub_table_config *t;
	char **field;

	if (strncmp(section, TABLE_PREFIX, strlen(TABLE_PREFIX)) != 0
	    || section[strlen(TABLE_PREFIX)] == '\0') {
		snprintf(err, errlen, "unknown section [%s]", section);
		return false;
	}
	t = table_get(conf, section + strlen(TABLE_PREFIX));
	if (!strcmp(name, "target"))
		field = &t->target;
	else if (!strcmp(name, "direction"))
		field = &t->direction;
	else if (!strcmp(name, "scope"))
		field = &t->scope;
	else if (!strcmp(name, "conflict"))
		field = &t->conflict;
	else if (!strcmp(name, "conflict_column"))
		field = &t->conflict_column;
	else if (!strcmp(name, "branch_column"))
		field = &t->branch_column;
	else if (!strcmp(name, "columns"))
		field = &t->columns;
	else if (!strcmp(name, "till_column"))
		field = &t->till_column;
	else {
		snprintf(
		    err, errlen, "unknown key \"%s\" in [%s]", name, section);
		return false;
	}
	if (*field != NULL) {
		snprintf(err, errlen, "duplicate key \"%s\" in [%s]", name,
		    section);
		return false;
	}
	/* Checked here, not in validate, so the error names the line. */
	if (field == &t->direction && strcmp(value, "up") != 0
	    && strcmp(value, "down") != 0) {
		snprintf(err, errlen,
		    "invalid direction \"%s\" in [%s]: expected "
		    "\"up\" or \"down\"",
		    value, section);
		return false;
	}
	if (field == &t->scope && value[0] == '\0') {
		snprintf(err, errlen, "empty \"scope\" in [%s]", section);
		return false;
	}
	if (field == &t->conflict && strcmp(value, "overwrite") != 0
	    && strcmp(value, "insert_only") != 0
	    && strcmp(value, "last_writer_wins") != 0) {
		snprintf(err, errlen,
		    "invalid conflict \"%s\" in [%s]: expected "
		    "\"overwrite\", \"insert_only\" or \"last_writer_wins\"",
		    value, section);
		return false;
	}
	if ((field == &t->conflict_column || field == &t->branch_column)
	    && value[0] == '\0') {
		snprintf(err, errlen, "empty \"%s\" in [%s]", name, section);
		return false;
	}
	if (field == &t->columns
	    && !colmap_parse(t, value, section, err, errlen))
		return false;
	if (field == &t->till_column && value[0] == '\0') {
		snprintf(
		    err, errlen, "empty \"till_column\" in [%s]", section);
		return false;
	}
	if (field == &t->conflict)
		t->policy = !strcmp(value, "insert_only")
		    ? HUB_CONFLICT_INSERT_ONLY
		    : !strcmp(value, "last_writer_wins")
		    ? HUB_CONFLICT_LWW
		    : HUB_CONFLICT_OVERWRITE;
	*field = xstrdup(value);
	t->down = t->direction != NULL && !strcmp(t->direction, "down");
	return true;
}

/*
 * scan_sections adds every "[table NAME]" header to the allow-list.
 * cfg_load hands on_section only key lines, so without this an empty
 * section (the common case: all defaults) would be lost silently.
 */
static void
scan_sections(hub_config *conf, const char *path)
{
	char line[1024];
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return; /* cfg_load already reported it */
	while (fgets(line, sizeof line, f) != NULL) {
		char *p = line, *end;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '[' || (end = strchr(p, ']')) == NULL)
			continue;
		*end = '\0';
		p++;
		if (!strncmp(p, TABLE_PREFIX, strlen(TABLE_PREFIX))
		    && p[strlen(TABLE_PREFIX)] != '\0')
			table_get(conf, p + strlen(TABLE_PREFIX));
	}
	fclose(f);
}

/* conflict_check checks the conflict keys of one table. */
static bool
conflict_check(const hub_table_config *t, char *err, size_t errlen)
{
	if (t->conflict != NULL && t->down) {
		snprintf(err, errlen,
		    "\"conflict\" is only for up tables (table \"%s\")",
		    t->name);
		return false;
	}
	if (t->policy == HUB_CONFLICT_LWW && t->conflict_column == NULL) {
		snprintf(err, errlen,
		    "\"conflict = last_writer_wins\" needs "
		    "\"conflict_column\" (table \"%s\")",
		    t->name);
		return false;
	}
	if (t->conflict_column != NULL && t->policy != HUB_CONFLICT_LWW) {
		snprintf(err, errlen,
		    "\"conflict_column\" is only for \"conflict = "
		    "last_writer_wins\" (table \"%s\")",
		    t->name);
		return false;
	}
	return true;
}

/*
 * mapping_check: branch_column and columns are for up tables; no POS
 * column may be stored in the branch column. Sets the default
 * branch_column of an up table.
 */
static bool
mapping_check(hub_table_config *t, char *err, size_t errlen)
{
	if (t->down && (t->branch_column != NULL || t->columns != NULL)) {
		snprintf(err, errlen,
		    "\"%s\" is only for up tables (table \"%s\")",
		    t->branch_column != NULL ? "branch_column" : "columns",
		    t->name);
		return false;
	}
	if (t->down)
		return true;
	if (t->branch_column == NULL)
		t->branch_column = xstrdup("branch_id");
	for (size_t i = 0; i < t->ncolmap; i++)
		if (!strcmp(t->colmap[i].center, t->branch_column)) {
			snprintf(err, errlen,
			    "\"columns\" maps \"%s\" to \"%s\", the "
			    "branch_column of table \"%s\"",
			    t->colmap[i].pos, t->branch_column, t->name);
			return false;
		}
	return true;
}

/* table_check fills schema and relname from target and checks scope. */
static bool
table_check(hub_table_config *t, char *err, size_t errlen)
{
	const char *dot;

	if (!conflict_check(t, err, errlen) || !mapping_check(t, err, errlen))
		return false;
	if (t->till_column != NULL && t->down) {
		snprintf(err, errlen,
		    "\"till_column\" is only for up tables (table \"%s\")",
		    t->name);
		return false;
	}
	if (t->scope != NULL && !t->down) {
		snprintf(err, errlen,
		    "\"scope\" is only for \"direction = down\" "
		    "(table \"%s\")",
		    t->name);
		return false;
	}
	/* "all" is the same as no scope column: every branch gets the row. */
	if (t->scope != NULL && !strcmp(t->scope, "all")) {
		free(t->scope);
		t->scope = NULL;
	}
	if (t->target == NULL) {
		t->schema = xstrdup("public");
		t->relname = xstrdup(t->name);
		return true;
	}
	dot = strchr(t->target, '.');
	if (dot == NULL) {
		t->schema = xstrdup("public");
		t->relname = xstrdup(t->target);
	} else {
		t->schema = xstrdup(t->target);
		t->schema[dot - t->target] = '\0';
		t->relname = xstrdup(dot + 1);
	}
	if (t->schema[0] == '\0' || t->relname[0] == '\0'
	    || strchr(t->relname, '.') != NULL) {
		snprintf(err, errlen,
		    "invalid target \"%s\" for table \"%s\": "
		    "expected \"schema.table\" or \"table\"",
		    t->target, t->name);
		return false;
	}
	return true;
}

/*
 * http_listen_check accepts "" (no listener) or "host:port", where host is
 * a name, an IPv4 address or a bracketed IPv6 address and port 1..65535:
 * hub_http puts it after "http://", so it must carry nothing else.
 */
static bool
http_listen_check(const char *s, char *err, size_t errlen)
{
	const char *colon, *why = NULL;
	int64_t port;
	char perr[200];

	if (s[0] == '\0')
		return true;
	if (strpbrk(s, "/?#@ \t") != NULL)
		why = "expected host:port, without a scheme or path";
	else if ((colon = strrchr(s, ':')) == NULL)
		why = "expected host:port";
	else if (colon == s)
		why = "missing host before the port";
	else if (s[0] == '[' && (colon[-1] != ']' || colon - s < 3))
		why = "expected [IPv6 address]:port";
	else if (s[0] != '['
	    && (memchr(s, ':', (size_t) (colon - s)) != NULL
	        || strpbrk(s, "[]") != NULL))
		why = "an IPv6 address must be in brackets, e.g. [::1]:7452";
	else if (!parse_int64(
	             colon + 1, 1, 65535, &port, "port", perr, sizeof perr))
		why = "the port must be a number from 1 to 65535";
	if (why == NULL)
		return true;
	snprintf(err, errlen, "invalid value \"%s\" for \"http_listen\": %s",
	    s, why);
	return false;
}

/*
 * tls_check: tls_cert and tls_key come together, and are required exactly
 * when a listen or publish URL uses TLS; tls_client_ca needs them, and
 * every listen URL must then use TLS (a plain listener beside the TLS one
 * would let agents in without a certificate). The
 * files themselves are read by "run" (server.c), so that commands run by
 * an operator need no access to the private key.
 */
static bool
tls_check(const hub_config *conf, char *err, size_t errlen)
{
	bool tls = tls_any_url(conf->urls, conf->nurls)
	    || tls_any_url(conf->pub_urls, conf->npub);
	const char *missing = conf->tls_cert == NULL ? "tls_cert"
	    : conf->tls_key == NULL                  ? "tls_key"
	                                             : NULL;

	if (tls && missing != NULL) {
		snprintf(err, errlen,
		    "\"%s\" is required: \"listen\" or \"publish\" has a "
		    "tls+tcp:// URL",
		    missing);
		return false;
	}
	if (!tls
	    && (conf->tls_cert != NULL || conf->tls_key != NULL
	        || conf->tls_client_ca != NULL)) {
		snprintf(err, errlen,
		    "\"%s\" is set but no \"listen\" or \"publish\" URL "
		    "uses tls+tcp://",
		    conf->tls_cert      ? "tls_cert"
		        : conf->tls_key ? "tls_key"
		                        : "tls_client_ca");
		return false;
	}
	for (size_t i = 0; conf->tls_client_ca != NULL && i < conf->nurls; i++)
		if (!tls_url(conf->urls[i])) {
			snprintf(err, errlen,
			    "\"listen\" has \"%s\", which is not "
			    "tls+tcp://, while \"tls_client_ca\" is set: "
			    "agents would connect there without a client "
			    "certificate",
			    conf->urls[i]);
			return false;
		}
	return true;
}

/* validate runs the checks that involve more than one key. */
static bool
validate(hub_config *conf, char *err, size_t errlen)
{
	if (!log_level_parse(conf->log_level, &conf->level)) {
		snprintf(err, errlen,
		    "invalid value \"%s\" for \"log_level\": "
		    "expected error, warning, notice, info or debug",
		    conf->log_level);
		return false;
	}
	if (!http_listen_check(conf->http_listen, err, errlen))
		return false;
	conf->nurls = cfg_list_split(conf->listen, &conf->urls);
	if (conf->publish != NULL)
		conf->npub = cfg_list_split(conf->publish, &conf->pub_urls);
	if (conf->nurls == 0) {
		snprintf(err, errlen, "\"listen\" names no URL");
		return false;
	}
	if (!tls_check(conf, err, errlen))
		return false;
	if ((conf->http_tls_cert == NULL) != (conf->http_tls_key == NULL)) {
		snprintf(err, errlen,
		    "\"http_tls_cert\" and \"http_tls_key\" "
		    "go together");
		return false;
	}
	if (conf->http_allowed_hosts != NULL)
		conf->nhttp_hosts = cfg_list_split(
		    conf->http_allowed_hosts, &conf->http_hosts);
	if (conf->ntables == 0) {
		snprintf(err, errlen,
		    "no [table NAME] section: nothing may "
		    "be replicated");
		return false;
	}
	for (size_t i = 0; i < conf->ntables; i++)
		if (!table_check(&conf->tables[i], err, errlen))
			return false;
	return true;
}

proto_err
hub_config_load(const char *path, hub_config *conf, char *err, size_t errlen)
{
	char why[600];

	if (!cfg_load(path, hub_keys, ARRAY_LEN(hub_keys), conf, on_section,
	        err, errlen)) {
		hub_config_free(conf);
		return PROTO_EINVAL;
	}
	scan_sections(conf, path);
	if (!validate(conf, why, sizeof why)) {
		snprintf(err, errlen, "%s: %s", path, why);
		hub_config_free(conf);
		return PROTO_EINVAL;
	}
	return PROTO_OK;
}

void
hub_config_limits(const hub_config *conf, proto_limits *lim)
{
	proto_limits_default(lim);
	lim->max_msg_bytes = (size_t) conf->max_message_bytes;
	lim->max_events = (uint32_t) conf->max_batch_events;
	lim->max_columns = (uint32_t) conf->max_columns;
	lim->max_tables = (uint32_t) conf->max_tables;
	lim->max_value_bytes = (uint32_t) conf->max_value_bytes;
}

void
hub_config_free(hub_config *conf)
{
	cfg_free(hub_keys, ARRAY_LEN(hub_keys), conf);
	cfg_list_free(conf->urls, conf->nurls);
	cfg_list_free(conf->pub_urls, conf->npub);
	cfg_list_free(conf->http_hosts, conf->nhttp_hosts);
	for (size_t i = 0; i < conf->ntables; i++) {
		hub_table_config *t = &conf->tables[i];
		free(t->name);
		free(t->schema);
		free(t->relname);
		free(t->target);
		free(t->direction);
		free(t->scope);
		free(t->conflict);
		free(t->conflict_column);
		free(t->branch_column);
		free(t->columns);
		for (size_t j = 0; j < t->ncolmap; j++) {
			free(t->colmap[j].pos);
			free(t->colmap[j].center);
		}
		free(t->colmap);
		free(t->till_column);
	}
	free(conf->tables);
	memset(conf, 0, sizeof *conf);
}
