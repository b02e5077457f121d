/*
 * query.c: the operator listener's query-string parser (see query.h).
 */
#include "query.h"

#include <string.h>

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool
query_decode(const char *s, size_t n, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char) s[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int hi, lo;
			if (i + 2 >= n || (hi = hexval(s[i + 1])) < 0
			    || (lo = hexval(s[i + 2])) < 0)
				return false;
			c = hi * 16 + lo;
			i += 2;
		}
		if (c < 0x20 || c == 0x7f || o + 1 >= outlen)
			return false;
		out[o++] = (char) c;
	}
	out[o] = '\0';
	return true;
}

bool
query_parse(const char *uri, char branch[QUERY_VALUE_MAX], bool *has_branch)
{
	const char *q = strchr(uri, '?');
	char name[QUERY_VALUE_MAX], value[QUERY_VALUE_MAX];
	bool seen = false;

	if (q == NULL)
		return true;
	if (strlen(++q) > QUERY_MAX)
		return false;
	while (*q != '\0') {
		size_t n = strcspn(q, "&"), k = strcspn(q, "&=");
		bool has_value = k < n;
		if (!query_decode(q, k, name, sizeof name)
		    || !query_decode(q + k + has_value, n - k - has_value,
		        value, sizeof value))
			return false;
		if (!strcmp(name, "branch") && !seen) {
			seen = true;
			memcpy(branch, value, sizeof value);
			*has_branch = value[0] != '\0';
		}
		q += n + (q[n] == '&');
	}
	return true;
}
