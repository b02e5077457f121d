/*
 * sqlb.h: a small growable string for building SQL text.
 *
 * Identifiers always go through sqlb_ident ("" doubling) and string
 * literals through sqlb_lit ('' doubling); the names themselves come only
 * from the POS file's own catalog. Memory errors abort (xmalloc policy).
 */
#ifndef AGENT_SQLB_H
#define AGENT_SQLB_H

#include <stddef.h>

typedef struct {
	char *s;    /* NUL-terminated text; owned */
	size_t len; /* bytes used, without the NUL */
	size_t cap; /* bytes allocated */
} sqlb;

/* sqlb_add appends formatted text. */
void sqlb_add(sqlb *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* sqlb_ident appends name as a double-quoted SQL identifier. */
void sqlb_ident(sqlb *b, const char *name);
/* sqlb_lit appends s as a single-quoted SQL string literal. */
void sqlb_lit(sqlb *b, const char *s);
/* sqlb_take returns the text (caller frees) and empties b. */
char *sqlb_take(sqlb *b);
/* sqlb_fini frees the text; the struct may be reused after it. */
void sqlb_fini(sqlb *b);

#endif /* AGENT_SQLB_H */
