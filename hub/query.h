/*
 * query.h: the query string of the operator listener's requests.
 *
 * Split out of http.c so that the parser can be fuzzed without an HTTP
 * server (tests/fuzz/fuzz_http_query.c). Only "branch" is looked at.
 */
#ifndef HUB_QUERY_H
#define HUB_QUERY_H

#include <stdbool.h>
#include <stddef.h>

/* Longest query string looked at; longer ones are refused (400). */
#define QUERY_MAX 1024
/* Room for a decoded parameter value, its NUL included. */
#define QUERY_VALUE_MAX 256

/*
 * query_decode percent-decodes n bytes of s ('+' is a space) into out
 * (size outlen, NUL-terminated). False if an escape is malformed, the
 * value holds a control character (%00 included) or does not fit.
 */
bool query_decode(const char *s, size_t n, char *out, size_t outlen);

/*
 * query_parse reads ?branch= of uri into branch and *has_branch (set, not
 * empty); the first one counts, and both are left alone if there is none.
 * False (answer 400) when the query string is too long, or any name or
 * value in it is malformed, so that nothing odd is half taken.
 */
bool query_parse(
    const char *uri, char branch[QUERY_VALUE_MAX], bool *has_branch);

#endif /* HUB_QUERY_H */
