/*
 * cfg.h: INI configuration described by one table of keys.
 *
 * A program declares every key once: section, name, type, where it goes in
 * the program's config struct, its default as a string, its range, and
 * flags. cfg_load applies the defaults, parses the file (ini.h) and
 * checks each value, so an error names the file, the line and the reason:
 *
 *   /etc/branchsync/agent.ini:12: unknown key "lisen_url" in [agent]
 *
 * Sections that are not in the table (e.g. "[table products]") go to a
 * callback, so a program can accept one section per table.
 *
 * A renamed key keeps its old name as an entry with CFG_OLD_NAME whose def
 * is the new name: a file that uses it still loads, into the new key, and
 * a warning (CFG-OLD-NAME) says to rename it; setting both is an error.
 */
#ifndef BS_CFG_H
#define BS_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
	CFG_STR,  /* char *, freed by cfg_free */
	CFG_INT,  /* int64_t within [min, max] */
	CFG_BOOL, /* bool: true/false, yes/no, on/off, 1/0 */
} cfg_type;

enum {
	CFG_REQUIRED = 1 << 0, /* the file must set it */
	CFG_OLD_NAME = 1 << 1, /* an old name of the key named in def */
};

typedef struct {
	const char *section; /* e.g. "agent" */
	const char *name;    /* e.g. "batch_max_events" */
	cfg_type type;       /* how to parse */
	size_t offset;       /* offsetof(struct, field) */
	const char *def;     /* default as text; NULL means none; with
	                        CFG_OLD_NAME the key's current name */
	int64_t min, max;    /* range for CFG_INT */
	unsigned flags;      /* CFG_REQUIRED, CFG_OLD_NAME */
	const char *help;    /* one line, for --help and docs */
} cfg_key;

/*
 * Called for "name = value" in a section the table does not know. Returns
 * false and writes a reason into err to reject the line.
 */
typedef bool (*cfg_section_cb)(void *conf, const char *section,
    const char *name, const char *value, char *err, size_t errlen);

/*
 * cfg_load fills conf from the defaults and then the file at path. Returns
 * true on success; on failure err holds "path:line: reason" (or "path:
 * reason") and conf may hold partial values: release it with cfg_free.
 */
bool cfg_load(const char *path, const cfg_key *keys, size_t nkeys, void *conf,
    cfg_section_cb cb, char *err, size_t errlen);

/* cfg_free frees the strings cfg_load stored in conf. */
void cfg_free(const cfg_key *keys, size_t nkeys, void *conf);

/* cfg_list_split splits "a, b,c" into trimmed items; returns the count. */
size_t cfg_list_split(const char *s, char ***items);
void cfg_list_free(char **items, size_t n);

#endif /* BS_CFG_H */
