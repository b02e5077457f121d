/*
 * pgval.h: wire values as PostgreSQL text, appended to a strbuf
 * (strbuf.h): array-literal elements for the set-based apply, and JSON for
 * the reject log.
 *
 * Array element formats (inside "{...}", separated by commas):
 *
 *   nil     NULL               unquoted, so it is SQL NULL
 *   bool    t | f
 *   int     -123               decimal
 *   float   "1.5" "NaN" "Infinity"   %.17g, quoted
 *   str     "a\"b\\c"          always quoted; \ and " escaped
 *   bin     "\\x0aff"          bytea hex input, its backslash escaped
 *
 * A str holding a NUL byte cannot be passed as text at all: callers check
 * pgval_has_nul first and reject the event.
 */
#ifndef HUB_PGVAL_H
#define HUB_PGVAL_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/msg.h"
#include "strbuf.h"

/* pgval_has_nul reports whether v is a str holding a NUL byte. */
bool pgval_has_nul(const proto_value *v);

/*
 * pgval_array_elem appends v as one array-literal element (no separator).
 * v must not be a str with a NUL byte (see pgval_has_nul).
 */
void pgval_array_elem(strbuf *b, const proto_value *v);

/*
 * pgval_json appends v as a JSON value that jsonb accepts: invalid UTF-8
 * and NUL become U+FFFD, NaN and infinities become null, bin becomes a
 * "\\x<hex>" string.
 */
void pgval_json(strbuf *b, const proto_value *v);

/* pgval_json_str appends s (n bytes) as a JSON string, as pgval_json. */
void pgval_json_str(strbuf *b, const char *s, size_t n);

#endif /* HUB_PGVAL_H */
