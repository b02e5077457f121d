/*
 * fuzz_http_query.c: libFuzzer target for the operator listener's query
 * string (hub/query.c: query_parse and query_decode).
 *
 * The input is the request URI as nng hands it over (NUL-terminated, so
 * it is cut at the first NUL). query_parse must never write past its
 * buffers (ASan), and on success the branch it took must be a short,
 * NUL-terminated string without control characters, equal to what an
 * independent reference parser written here finds. query_decode is also
 * run on the raw input with an output buffer whose size the input picks,
 * against the same reference. Finally the branch is percent-encoded again
 * and parsed back: it must come out unchanged.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz_common.h"
#include "query.h"

/* Longest URI looked at: well past QUERY_MAX, so "too long" is reached. */
#define URI_MAX (2 * QUERY_MAX + 64)

static int
ref_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* ref_decode: the same contract as query_decode, written differently. */
static bool
ref_decode(const char *s, size_t n, char *out, size_t outlen)
{
	size_t i = 0, o = 0;

	while (i < n) {
		int c = (unsigned char) s[i++];
		if (c == '%') {
			if (n - i < 2 || ref_hex(s[i]) < 0
			    || ref_hex(s[i + 1]) < 0)
				return false;
			c = ref_hex(s[i]) << 4 | ref_hex(s[i + 1]);
			i += 2;
		} else if (c == '+')
			c = ' ';
		if (c < 0x20 || c == 0x7f)
			return false;
		if (o + 1 >= outlen)
			return false;
		out[o++] = (char) c;
	}
	if (outlen == 0)
		return false;
	out[o] = '\0';
	return true;
}

/* ref_parse: query_parse's contract over uri, written differently. */
static bool
ref_parse(const char *uri, char *branch, bool *has)
{
	const char *q = strchr(uri, '?'), *end;
	char name[QUERY_VALUE_MAX], value[QUERY_VALUE_MAX];
	bool seen = false;

	if (q == NULL)
		return true;
	q++;
	end = q + strlen(q);
	if (end - q > QUERY_MAX)
		return false;
	while (q < end) {
		const char *amp = memchr(q, '&', (size_t) (end - q));
		const char *stop = amp != NULL ? amp : end;
		const char *eq = memchr(q, '=', (size_t) (stop - q));
		const char *vs = eq != NULL ? eq + 1 : stop;
		if (!ref_decode(q, (size_t) ((eq != NULL ? eq : stop) - q),
		        name, sizeof name)
		    || !ref_decode(
		        vs, (size_t) (stop - vs), value, sizeof value))
			return false;
		if (!seen && strcmp(name, "branch") == 0) {
			seen = true;
			strcpy(branch, value);
			*has = value[0] != '\0';
		}
		q = amp != NULL ? amp + 1 : end;
	}
	return true;
}

static void
check_value(const char *v)
{
	size_t n = strnlen(v, QUERY_VALUE_MAX);

	FUZZ_ASSERT(n < QUERY_VALUE_MAX);
	for (size_t i = 0; i < n; i++)
		FUZZ_ASSERT((unsigned char) v[i] >= 0x20 && v[i] != 0x7f);
}

/* reencode parses "?branch=<v percent-encoded>" and expects v back. */
static void
reencode(const char *v)
{
	static const char hex[] = "0123456789ABCDEF";
	char uri[32 + 3 * QUERY_VALUE_MAX], got[QUERY_VALUE_MAX] = "";
	size_t o = 0;
	bool has = false;

	o += (size_t) snprintf(uri, sizeof uri, "/api/status?branch=");
	for (const unsigned char *p = (const unsigned char *) v; *p; p++) {
		uri[o++] = '%';
		uri[o++] = hex[*p >> 4];
		uri[o++] = hex[*p & 15];
	}
	uri[o] = '\0';
	if (o - 12 > QUERY_MAX) /* too long once encoded: refused */
		FUZZ_ASSERT(!query_parse(uri, got, &has));
	else {
		FUZZ_ASSERT(query_parse(uri, got, &has));
		FUZZ_ASSERT(strcmp(got, v) == 0 && has == (v[0] != '\0'));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *uri, *branch, *ref, *out, *rout;
	bool has = false, rhas = false, ok, rok;
	size_t outlen;

	if (size > URI_MAX)
		return 0;
	/* Exact-size heap copies, so ASan sees any overrun. */
	uri = malloc(size + 1);
	memcpy(uri, data, size);
	uri[size] = '\0';
	branch = calloc(1, QUERY_VALUE_MAX);
	ref = calloc(1, QUERY_VALUE_MAX);
	ok = query_parse(uri, branch, &has);
	rok = ref_parse(uri, ref, &rhas);
	FUZZ_ASSERT(ok == rok);
	if (ok) {
		FUZZ_ASSERT(has == rhas);
		FUZZ_ASSERT(strcmp(branch, ref) == 0);
		check_value(branch);
		FUZZ_ASSERT(has == (branch[0] != '\0'));
		reencode(branch);
	}
	/* query_decode over the raw bytes, into a buffer of 1..64 bytes. */
	outlen = size > 0 ? (size_t) data[0] % 64 + 1 : 1;
	out = malloc(outlen);
	rout = malloc(outlen);
	ok = query_decode((const char *) data, size, out, outlen);
	rok = ref_decode((const char *) data, size, rout, outlen);
	FUZZ_ASSERT(ok == rok);
	if (ok)
		FUZZ_ASSERT(strcmp(out, rout) == 0);
	free(out);
	free(rout);
	free(uri);
	free(branch);
	free(ref);
	return 0;
}
