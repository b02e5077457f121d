/*
 * laterset.h: does a row have a log entry after the one being read?
 *
 * A batch read asks this of every row it reads (outbox.c: the values of
 * a row with a later entry go out "ahead"). The log's (tbl, k) index
 * answers it in one probe, but on a random page per row. A laterset
 * answers "no" for almost every row from memory: it counts the (table,
 * key) hashes of the log entries in a seq range, each added when the
 * outbox first scans the entry and taken out when the batch read passes
 * it. Counting, with two counters per hash and the smaller one read
 * (a count-min filter), it never says "no" for a key that has an entry
 * in the range; its "maybe" is settled by the index. A counter that
 * reaches its maximum stays there until the set is cleared.
 */
#ifndef AGENT_LATERSET_H
#define AGENT_LATERSET_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct laterset laterset;

/* laterset_new returns an empty set (cleared for 0 entries). */
laterset *laterset_new(void);

/* laterset_free frees ls; laterset_free(NULL) does nothing. */
void laterset_free(laterset *ls);

/* laterset_clear empties ls, sized for about `expect` entries. */
void laterset_clear(laterset *ls, size_t expect);

/* laterset_hash hashes a log entry's table and key as SQL compares them
 * (an integral REAL as the INTEGER it equals). */
uint64_t laterset_hash(const char *tbl, sqlite3_value *k);

/* laterset_add counts one entry of hash h. */
void laterset_add(laterset *ls, uint64_t h);

/* laterset_remove takes out one entry of hash h, which was added. */
void laterset_remove(laterset *ls, uint64_t h);

/* laterset_maybe: false if no entry of hash h is in ls. */
bool laterset_maybe(const laterset *ls, uint64_t h);

#endif /* AGENT_LATERSET_H */
