/*
 * config.c: the agent's key table, "[table NAME]" sections and the branch
 * secret. cfg_load (ini.c) parses the file; this file only knows
 * which keys exist and how to check them.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cfg.h"
#include "platform.h"
#include "util.h"

#define OFF(f) offsetof(agent_config, f)

/* Every [agent] key, alphabetical. */
static const cfg_key agent_keys[] = {
    {"agent", "backoff_max_ms", CFG_INT, OFF(backoff_max_ms), "30000", 1,
        86400000, 0, "largest delay between retries"},
    {"agent", "backoff_min_ms", CFG_INT, OFF(backoff_min_ms), "100", 1,
        86400000, 0, "first delay between retries"},
    /* Old names of max_batch_bytes and max_batch_events (the hub's). */
    {"agent", "batch_max_bytes", CFG_INT, OFF(batch_max_bytes),
        "max_batch_bytes", 1024, 16777216, CFG_OLD_NAME, NULL},
    {"agent", "batch_max_events", CFG_INT, OFF(batch_max_events),
        "max_batch_events", 1, 10000, CFG_OLD_NAME, NULL},
    {"agent", "branch", CFG_STR, OFF(branch), NULL, 0, 0, CFG_REQUIRED,
        "branch code"},
    {"agent", "busy_timeout_ms", CFG_INT, OFF(busy_timeout_ms), "5000", 0,
        600000, 0, "SQLite busy timeout"},
    {"agent", "database", CFG_STR, OFF(database), NULL, 0, 0, CFG_REQUIRED,
        "the POS SQLite file"},
    {"agent", "hub", CFG_STR, OFF(hub), NULL, 0, 0, CFG_REQUIRED,
        "comma-separated hub URLs"},
    {"agent", "heartbeat_ms", CFG_INT, OFF(heartbeat_ms), "30000", 1000,
        86400000, 0, "an idle agent reports to the hub this often"},
    {"agent", "http_port", CFG_INT, OFF(http_port), "7453", 0, 65535, 0,
        "status and metrics over HTTP on 127.0.0.1 (0: off)"},
    {"agent", "key", CFG_STR, OFF(key), NULL, 0, 0, 0, "branch secret"},
    {"agent", "key_file", CFG_STR, OFF(key_file), NULL, 0, 0, 0,
        "file holding the branch secret"},
    {"agent", "log_file", CFG_STR, OFF(log_file), NULL, 0, 0, 0,
        "log file of \"run\", rotated by size; default stderr (a Windows "
        "service: agent.log beside the default configuration)"},
    {"agent", "log_file_max_bytes", CFG_INT, OFF(log_file_max_bytes),
        "10485760", 65536, 1073741824, 0,
        "rotate log_file before it passes this size; 3 old files are kept"},
    {"agent", "log_level", CFG_STR, OFF(log_level), "info", 0, 0, 0,
        "error|warning|notice|info|debug"},
    {"agent", "max_batch_bytes", CFG_INT, OFF(batch_max_bytes), "1048576",
        1024, 16777216, 0, "approximate bytes of values per PUSH"},
    {"agent", "max_batch_events", CFG_INT, OFF(batch_max_events), "2000", 1,
        10000, 0, "events per PUSH"},
    {"agent", "max_columns", CFG_INT, OFF(max_columns), "1600", 1, 1600, 0,
        "most columns of one table in a CHANGES page from the hub"},
    {"agent", "max_message_bytes", CFG_INT, OFF(max_message_bytes), "33554432",
        65536, 268435456, 0, "largest answer accepted from the hub, bytes"},
    {"agent", "max_value_bytes", CFG_INT, OFF(max_value_bytes), "16777216", 1,
        268435456, 0,
        "largest text or binary value accepted from the hub, bytes"},
    {"agent", "max_pull_rows", CFG_INT, OFF(pull_max_rows), "5000", 1, 100000,
        0, "changes per CHANGES page"},
    {"agent", "nudge", CFG_STR, OFF(nudge), NULL, 0, 0, 0,
        "comma-separated hub pub URLs for nudges (pull, rejects)"},
    {"agent", "outbox_warn_age_s", CFG_INT, OFF(outbox_warn_age_s), "86400", 1,
        31536000, 0,
        "warn when the oldest pending event is this old, seconds"},
    {"agent", "outbox_warn_events", CFG_INT, OFF(outbox_warn_events), "100000",
        1, INT64_MAX, 0, "warn when this many events are pending"},
    {"agent", "poll_ms", CFG_INT, OFF(poll_ms), "200", 1, 3600000, 0,
        "idle poll interval"},
    {"agent", "pull_interval_ms", CFG_INT, OFF(pull_interval_ms), "30000",
        1000, 86400000, 0, "pull master data at least this often"},
    /* Old name of max_pull_rows (the hub's). */
    {"agent", "pull_max_rows", CFG_INT, OFF(pull_max_rows), "max_pull_rows", 1,
        100000, CFG_OLD_NAME, NULL},
    {"agent", "request_timeout_ms", CFG_INT, OFF(request_timeout_ms), "10000",
        100, 3600000, 0, "wait for a hub answer this long"},
    {"agent", "stall_warning_ms", CFG_INT, OFF(stall_warning_ms), "300000",
        1000, 604800000, 0,
        "warn when events are pending and no ACK came for this long"},
    {"agent", "till", CFG_STR, OFF(till), NULL, 0, 0, 0,
        "till code of this POS file, for a branch with several tills; "
        "key is then the till's key"},
    {"agent", "tls_ca", CFG_STR, OFF(tls_ca), NULL, 0, 0, 0,
        "PEM CAs that sign the hub's certificate (tls+tcp:// URLs)"},
    {"agent", "tls_cert", CFG_STR, OFF(tls_cert), NULL, 0, 0, 0,
        "PEM client certificate, for a hub with tls_client_ca"},
    {"agent", "tls_key", CFG_STR, OFF(tls_key), NULL, 0, 0, 0,
        "PEM private key of tls_cert"},
    {"agent", "tls_server_name", CFG_STR, OFF(tls_server_name), NULL, 0, 0, 0,
        "name expected in the hub's certificate; default the URL's host"},
};

const agent_table_config *
agent_config_find(const agent_config *c, const char *name)
{
	for (size_t i = 0; i < c->ntables; i++)
		if (!strcmp(c->tables[i].name, name))
			return &c->tables[i];
	return NULL;
}

size_t
agent_config_count_down(const agent_config *c)
{
	size_t n = 0;

	for (size_t i = 0; i < c->ntables; i++)
		n += c->tables[i].down;
	return n;
}

/* "table NAME" -> NAME (trimmed), or NULL if section is something else. */
static const char *
table_section_name(const char *section, char *buf, size_t buflen)
{
	size_t n;

	if (strncmp(section, "table", 5)
	    || !isspace((unsigned char) section[5]))
		return NULL;
	section += 5;
	while (isspace((unsigned char) *section))
		section++;
	n = strlen(section);
	while (n > 0 && isspace((unsigned char) section[n - 1]))
		n--;
	if (n == 0 || n >= buflen)
		return NULL;
	memcpy(buf, section, n);
	buf[n] = '\0';
	return buf;
}

/* "direction = up|down" of a [table NAME] section. */
static bool
table_direction(agent_table_config *t, const char *section, const char *value,
    char *err, size_t errlen)
{
	if (!strcasecmp(value, "up"))
		t->down = false;
	else if (!strcasecmp(value, "down"))
		t->down = true;
	else {
		snprintf(err, errlen,
		    "invalid direction \"%s\" in [%s] (up or down)", value,
		    section);
		return false;
	}
	return true;
}

/* A list key ("key", "exclude") of a [table NAME] section, set once. */
static bool
table_list(char **dst, const char *name, const char *section,
    const char *value, char *err, size_t errlen)
{
	if (*dst != NULL) {
		snprintf(err, errlen, "duplicate key \"%s\" in [%s]", name,
		    section);
		return false;
	}
	*dst = xstrdup(value);
	return true;
}

/* Called by cfg_load for lines in sections outside the key table. */
static bool
table_key_cb(void *conf, const char *section, const char *name,
    const char *value, char *err, size_t errlen)
{
	agent_config *c = conf;
	char buf[256];
	const char *tbl = table_section_name(section, buf, sizeof buf);
	agent_table_config *t;

	if (tbl == NULL) {
		snprintf(err, errlen, "unknown section [%s]", section);
		return false;
	}
	/* Sections were collected by the pre-scan, so the table exists. */
	t = (agent_table_config *) agent_config_find(c, tbl);
	if (t != NULL && !strcmp(name, "direction"))
		return table_direction(t, section, value, err, errlen);
	if (t != NULL && !strcmp(name, "key"))
		return table_list(&t->key, name, section, value, err, errlen);
	if (t != NULL && !strcmp(name, "exclude"))
		return table_list(
		    &t->exclude, name, section, value, err, errlen);
	snprintf(err, errlen, "unknown key \"%s\" in [%s]", name, section);
	return false;
}

/*
 * cfg_load hands the callback only "name = value" lines, so an empty
 * "[table payments]" section would be invisible. A short pre-scan of the
 * section headers collects the tables in file order.
 */
static bool
scan_tables(const char *path, agent_config *c, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[1024], buf[256];
	int lineno = 0;

	if (f == NULL)
		return true; /* cfg_load reports it */
	while (fgets(line, sizeof line, f) != NULL) {
		char *p = line, *end;
		const char *tbl;
		lineno++;
		while (isspace((unsigned char) *p))
			p++;
		if (*p != '[' || (end = strchr(p, ']')) == NULL)
			continue;
		*end = '\0';
		if ((tbl = table_section_name(p + 1, buf, sizeof buf)) == NULL)
			continue;
		if (agent_config_find(c, tbl) != NULL) {
			snprintf(err, errlen, "%s:%d: duplicate section [%s]",
			    path, lineno, p + 1);
			fclose(f);
			return false;
		}
		c->tables = xrealloc(
		    c->tables, (c->ntables + 1) * sizeof *c->tables);
		c->tables[c->ntables++] = (agent_table_config) {
		    .name = xstrdup(tbl), .line = lineno};
	}
	fclose(f);
	return true;
}

/* Reads the first line of key_file into c->secret. */
static bool
read_key_file(agent_config *c, char *err, size_t errlen)
{
	FILE *f = fopen(c->key_file, "r");
	char line[1024];
	size_t n;

	if (f == NULL) {
		snprintf(err, errlen, "could not open key file \"%s\": %s",
		    c->key_file, plat_strerror(errno));
		return false;
	}
	/* The secret is a password: others must not be able to read it. */
	tls_check_perms(c->key_file, "AGENT-KEY-FILE", "the branch key");
	if (fgets(line, sizeof line, f) == NULL)
		line[0] = '\0';
	fclose(f);
	n = strlen(line);
	while (n > 0 && isspace((unsigned char) line[n - 1]))
		line[--n] = '\0';
	if (n == 0) {
		snprintf(err, errlen, "key file \"%s\" is empty", c->key_file);
		return false;
	}
	c->secret = xstrdup(line);
	return true;
}

static bool
resolve_secret(agent_config *c, const char *path, char *err, size_t errlen)
{
	if ((c->key == NULL) == (c->key_file == NULL)) {
		snprintf(err, errlen,
		    "%s: exactly one of \"key\" and \"key_file\" must be set "
		    "in [agent]",
		    path);
		return false;
	}
	if (c->key != NULL) {
		if (c->key[0] == '\0') {
			snprintf(err, errlen, "%s: \"key\" is empty", path);
			return false;
		}
		tls_check_perms(path, "AGENT-KEY-PERMS", "the branch key");
		c->secret = xstrdup(c->key);
		return true;
	}
	return read_key_file(c, err, errlen);
}

/*
 * tls_check: tls_ca is required exactly when a hub or nudge URL uses TLS;
 * tls_cert and tls_key come together. The files are read when "run"
 * dials (tls.h), so that "status" needs no access to the private key.
 */
static bool
tls_check(const agent_config *c, const char *path, char *err, size_t errlen)
{
	char **hubs, **nudges = NULL;
	size_t nh = cfg_list_split(c->hub, &hubs), nn = 0;
	bool tls;

	if (c->nudge != NULL)
		nn = cfg_list_split(c->nudge, &nudges);
	tls = tls_any_url(hubs, nh) || tls_any_url(nudges, nn);
	cfg_list_free(hubs, nh);
	cfg_list_free(nudges, nn);
	if (tls && c->tls_ca == NULL)
		snprintf(err, errlen,
		    "%s: \"tls_ca\" is required: \"hub\" or \"nudge\" has "
		    "a tls+tcp:// URL",
		    path);
	else if ((c->tls_cert == NULL) != (c->tls_key == NULL))
		snprintf(err, errlen,
		    "%s: \"tls_cert\" and \"tls_key\" must be set together",
		    path);
	else if (!tls && (c->tls_ca || c->tls_cert || c->tls_server_name))
		snprintf(err, errlen,
		    "%s: \"%s\" is set but no \"hub\" or \"nudge\" URL "
		    "uses tls+tcp://",
		    path,
		    c->tls_ca         ? "tls_ca"
		        : c->tls_cert ? "tls_cert"
		                      : "tls_server_name");
	else
		return true;
	return false;
}

void
agent_config_tls_opts(const agent_config *c, tls_opts *o)
{
	*o = (tls_opts) {c->tls_ca, "tls_ca", c->tls_cert, c->tls_key,
	    c->tls_server_name, "AGENT-KEY-PERMS"};
}

proto_err
agent_config_dial(nng_socket sock, const agent_config *c, const char *list,
    const char *what, char *err, size_t errlen)
{
	tls_opts o;

	nng_socket_set_ms(
	    sock, NNG_OPT_RECONNMINT, (nng_duration) c->backoff_min_ms);
	nng_socket_set_ms(
	    sock, NNG_OPT_RECONNMAXT, (nng_duration) c->backoff_max_ms);
	agent_config_tls_opts(c, &o);
	return tls_dial_all(sock, list, what, &o, err, errlen);
}

/* Checks that need more than one key, after the file was read. */
static bool
check_conf(agent_config *c, const char *path, char *err, size_t errlen)
{
	if (!log_level_parse(c->log_level, &c->level)) {
		snprintf(err, errlen, "%s: invalid log_level \"%s\"", path,
		    c->log_level);
		return false;
	}
	if (c->backoff_min_ms > c->backoff_max_ms) {
		snprintf(err, errlen,
		    "%s: backoff_min_ms is larger than backoff_max_ms", path);
		return false;
	}
	if (c->ntables == 0) {
		snprintf(err, errlen, "%s: no [table NAME] section", path);
		return false;
	}
	if (c->log_file != NULL && c->log_file[0] == '\0') {
		snprintf(err, errlen,
		    "%s: \"log_file\" is empty; give a file or remove the key",
		    path);
		return false;
	}
	if (c->till != NULL && c->till[0] == '\0') {
		snprintf(err, errlen,
		    "%s: \"till\" is empty; give the till's code or remove "
		    "the key",
		    path);
		return false;
	}
	/* What "branchsync-hub branch add" and "till add" accept. */
	if (!proto_code_valid(c->branch)
	    || (c->till != NULL && !proto_code_valid(c->till))) {
		snprintf(err, errlen,
		    "%s: invalid %s code \"%s\": use 1 to %d letters, digits, "
		    "\"_\", \"-\" or \".\"",
		    path, proto_code_valid(c->branch) ? "till" : "branch",
		    proto_code_valid(c->branch) ? c->till : c->branch,
		    PROTO_CODE_MAX);
		return false;
	}
	for (size_t i = 0; i < c->ntables; i++)
		if (c->tables[i].down && c->tables[i].exclude != NULL) {
			snprintf(err, errlen,
			    "%s:%d: \"exclude\" is for up tables only; a down "
			    "table's local columns are never written by the "
			    "hub",
			    path, c->tables[i].line);
			return false;
		}
	return tls_check(c, path, err, errlen);
}

bool
agent_config_load(const char *path, bool need_secret, agent_config *c,
    char *err, size_t errlen)
{
	memset(c, 0, sizeof *c);
	if (!scan_tables(path, c, err, errlen)
	    || !cfg_load(path, agent_keys, ARRAY_LEN(agent_keys), c,
	        table_key_cb, err, errlen)
	    || !check_conf(c, path, err, errlen))
		goto fail;
	if (!need_secret)
		return true;
	if (c->tls_key != NULL)
		tls_check_perms(
		    c->tls_key, "AGENT-KEY-PERMS", "a TLS private key");
	if (resolve_secret(c, path, err, errlen))
		return true;
fail:
	agent_config_free(c); /* what was filled in before the error */
	return false;
}

void
agent_config_limits(const agent_config *c, proto_limits *lim)
{
	proto_limits_default(lim);
	lim->max_msg_bytes = (size_t) c->max_message_bytes;
	lim->max_columns = (uint32_t) c->max_columns;
	lim->max_value_bytes = (uint32_t) c->max_value_bytes;
	if (lim->max_events < (uint32_t) c->pull_max_rows)
		lim->max_events = (uint32_t) c->pull_max_rows;
}

void
agent_config_free(agent_config *c)
{
	cfg_free(agent_keys, ARRAY_LEN(agent_keys), c);
	for (size_t i = 0; i < c->ntables; i++) {
		free(c->tables[i].name);
		free(c->tables[i].key);
		free(c->tables[i].exclude);
	}
	free(c->tables);
	free(c->secret);
	memset(c, 0, sizeof *c);
}
