/* cfg.c: table-driven INI loading on top of ini.c. */
#include "cfg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ini.h"
#include "log.h"
#include "platform.h"
#include "util.h"

typedef struct {
	const cfg_key *keys; /* the table */
	size_t nkeys;        /* its length */
	void *conf;          /* the struct being filled */
	cfg_section_cb cb;   /* for sections not in the table */
	int *seen;           /* per key: line that set it, 0 if none */
	const char *path;    /* the file, for warnings */
	char *err;           /* first error, if any */
	size_t errlen;       /* size of err */
	bool failed;         /* an error was recorded */
	int lineno;          /* the line being handled */
} cfg_ctx;

static bool
set_value(
    const cfg_key *k, void *conf, const char *value, char *err, size_t errlen)
{
	char *field = (char *) conf + k->offset;

	switch (k->type) {
	case CFG_STR: {
		char **sp = (char **) (void *) field;
		free(*sp);
		*sp = xstrdup(value);
		return true;
	}
	case CFG_INT: {
		int64_t v;
		if (!parse_int64(
		        value, k->min, k->max, &v, k->name, err, errlen))
			return false;
		memcpy(field, &v, sizeof v);
		return true;
	}
	case CFG_BOOL: {
		bool b;
		if (!strcasecmp(value, "true") || !strcasecmp(value, "yes")
		    || !strcasecmp(value, "on") || !strcmp(value, "1"))
			b = true;
		else if (!strcasecmp(value, "false")
		    || !strcasecmp(value, "no") || !strcasecmp(value, "off")
		    || !strcmp(value, "0"))
			b = false;
		else {
			snprintf(err, errlen,
			    "invalid boolean \"%s\" for \"%s\"", value,
			    k->name);
			return false;
		}
		memcpy(field, &b, sizeof b);
		return true;
	}
	}
	return false;
}

static bool
section_known(const cfg_ctx *c, const char *section)
{
	for (size_t i = 0; i < c->nkeys; i++)
		if (!strcmp(c->keys[i].section, section))
			return true;
	return false;
}

/* The index of the key named name in section, or nkeys. */
static size_t
key_find(const cfg_ctx *c, const char *section, const char *name)
{
	size_t i;

	for (i = 0; i < c->nkeys; i++)
		if (!strcmp(c->keys[i].section, section)
		    && !strcmp(c->keys[i].name, name))
			break;
	return i;
}

/*
 * set_key stores a line's value in key i (an old name stores it in the
 * key it names). Either name counts as the key: a second line of it is a
 * duplicate.
 */
static bool
set_key(cfg_ctx *c, size_t i, const char *value, char *why, size_t whylen)
{
	const cfg_key *k = &c->keys[i];
	size_t j = i;

	if (k->flags & CFG_OLD_NAME) {
		j = key_find(c, k->section, k->def);
		if (NEVER(j == c->nkeys)) {
			snprintf(why, whylen, "key \"%s\" has no new name",
			    k->name);
			return false;
		}
		log_warn("CFG-OLD-NAME",
		    "%s:%d: \"%s\" in [%s] is the old name of \"%s\"; "
		    "rename it",
		    c->path, c->lineno, k->name, k->section, k->def);
	}
	if (c->seen[j]) {
		snprintf(why, whylen,
		    "duplicate key \"%s\" in [%s] (line %d set it already)",
		    c->keys[j].name, k->section, c->seen[j]);
		return false;
	}
	c->seen[j] = c->lineno;
	/* An old name's entry has the same field and range: its errors
	 * name the key as the file wrote it. */
	return set_value(k, c->conf, value, why, whylen);
}

static int
on_line(void *user, int lineno, const char *section, const char *name,
    const char *value)
{
	cfg_ctx *c = user;
	char why[512] = "";

	c->lineno = lineno;
	if (c->failed)
		return 0;
	if (name == NULL)
		return 1; /* a section header: its keys are checked */
	if (section_known(c, section)) {
		size_t i = key_find(c, section, name);
		if (i < c->nkeys) {
			if (!set_key(c, i, value, why, sizeof why))
				goto fail;
			return 1;
		}
		snprintf(why, sizeof why, "unknown key \"%s\" in [%s]", name,
		    section);
		goto fail;
	}
	if (c->cb != NULL && section[0] != '\0') {
		if (c->cb(c->conf, section, name, value, why, sizeof why))
			return 1;
		goto fail;
	}
	snprintf(why, sizeof why, "unknown section [%s]", section);
fail:
	snprintf(c->err, c->errlen, "%d: %s", lineno, why);
	c->failed = true;
	return 0;
}

bool
cfg_load(const char *path, const cfg_key *keys, size_t nkeys, void *conf,
    cfg_section_cb cb, char *err, size_t errlen)
{
	char why[600] = "", syntax[128];
	cfg_ctx c = {.keys = keys,
	    .nkeys = nkeys,
	    .conf = conf,
	    .cb = cb,
	    .path = path,
	    .err = why,
	    .errlen = sizeof why};
	FILE *f;
	int rc;
	bool ok = false;

	for (size_t i = 0; i < nkeys; i++) {
		if (keys[i].def != NULL && !(keys[i].flags & CFG_OLD_NAME)
		    && !set_value(
		        &keys[i], conf, keys[i].def, why, sizeof why)) {
			snprintf(err, errlen, "bad default: %s", why);
			return false;
		}
	}
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen,
		    "could not open configuration file "
		    "\"%s\": %s",
		    path, plat_strerror(errno));
		return false;
	}
	c.seen = xcalloc(nkeys ? nkeys : 1, sizeof(int));
	rc = ini_parse(f, on_line, &c, syntax, sizeof syntax);
	fclose(f);
	if (c.failed) {
		snprintf(err, errlen, "%s:%s", path, why);
		goto done;
	}
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", path, syntax);
		goto done;
	}
	if (rc > 0) {
		snprintf(
		    err, errlen, "%s:%d: syntax error: %s", path, rc, syntax);
		goto done;
	}
	for (size_t i = 0; i < nkeys; i++) {
		if ((keys[i].flags & CFG_REQUIRED) && !c.seen[i]) {
			snprintf(err, errlen,
			    "%s: missing required key \"%s\""
			    " in [%s]",
			    path, keys[i].name, keys[i].section);
			goto done;
		}
	}
	ok = true;
done:
	free(c.seen);
	return ok;
}

void
cfg_free(const cfg_key *keys, size_t nkeys, void *conf)
{
	for (size_t i = 0; i < nkeys; i++) {
		if (keys[i].type == CFG_STR) {
			char **sp = (char **) (void *) ((char *) conf
			    + keys[i].offset);
			free(*sp);
			*sp = NULL;
		}
	}
}

size_t
cfg_list_split(const char *s, char ***items)
{
	size_t n = 0, cap = 4;
	char **v = xmalloc(cap * sizeof *v);
	const char *p = s;

	while (*p != '\0') {
		const char *start, *end;
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && *p != ',')
			p++;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (n == cap)
			v = xrealloc(v, (cap *= 2) * sizeof *v);
		v[n] = xmalloc((size_t) (end - start) + 1);
		memcpy(v[n], start, (size_t) (end - start));
		v[n][end - start] = '\0';
		n++;
	}
	*items = v;
	return n;
}

void
cfg_list_free(char **items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(items[i]);
	free(items);
}
