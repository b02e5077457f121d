/*
 * laterset.c: the counting filter of laterset.h.
 *
 * 2^bits one-byte counters; a hash picks two of them from its two halves.
 * The size is a power of two with about 8 counters per expected entry, so
 * few "maybe" answers are false, between 4 KB and 1 MB (past 131,072
 * pending entries more answers are "maybe", never wrong).
 */
#include "laterset.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MIN_BITS 12
#define MAX_BITS 20

struct laterset {
	uint8_t *c;    /* the counters */
	uint32_t bits; /* log2 of their number */
};

laterset *
laterset_new(void)
{
	laterset *ls = xcalloc(1, sizeof *ls);

	laterset_clear(ls, 0);
	return ls;
}

void
laterset_free(laterset *ls)
{
	if (ls == NULL)
		return;
	free(ls->c);
	free(ls);
}

void
laterset_clear(laterset *ls, size_t expect)
{
	uint32_t bits = MIN_BITS;

	while (bits < MAX_BITS && ((size_t) 1 << bits) < expect * 8)
		bits++;
	if (bits != ls->bits) {
		free(ls->c);
		ls->c = xcalloc((size_t) 1 << bits, 1);
		ls->bits = bits;
	} else {
		memset(ls->c, 0, (size_t) 1 << bits);
	}
}

/* FNV-1a over n bytes, continuing from h. */
static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

uint64_t
laterset_hash(const char *tbl, sqlite3_value *k)
{
	uint64_t h = fnv(0xcbf29ce484222325ULL, tbl, strlen(tbl) + 1);
	unsigned char type = (unsigned char) sqlite3_value_type(k);
	int64_t i;
	double f;

	if (type == SQLITE_FLOAT) {
		f = sqlite3_value_double(k);
		/* 2.0 = 2 in SQL: hash it as the integer. */
		if (f >= -9.2e18 && f <= 9.2e18 && f == (double) (int64_t) f)
			type = SQLITE_INTEGER;
	}
	h = fnv(h, &type, 1);
	switch (type) {
	case SQLITE_INTEGER:
		i = sqlite3_value_type(k) == SQLITE_FLOAT
		    ? (int64_t) sqlite3_value_double(k)
		    : sqlite3_value_int64(k);
		h = fnv(h, &i, sizeof i);
		break;
	case SQLITE_FLOAT:
		f = sqlite3_value_double(k);
		h = fnv(h, &f, sizeof f);
		break;
	case SQLITE_TEXT:
		h = fnv(
		    h, sqlite3_value_text(k), (size_t) sqlite3_value_bytes(k));
		break;
	case SQLITE_BLOB:
		h = fnv(
		    h, sqlite3_value_blob(k), (size_t) sqlite3_value_bytes(k));
		break;
	default:
		break;
	}
	/* Spread the bits (the finalizer of MurmurHash3). */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static uint8_t *
slot(const laterset *ls, uint64_t h, int which)
{
	uint64_t mask = ((uint64_t) 1 << ls->bits) - 1;

	return &ls->c[(which ? h >> 32 : h) & mask];
}

void
laterset_add(laterset *ls, uint64_t h)
{
	for (int i = 0; i < 2; i++) {
		uint8_t *c = slot(ls, h, i);
		if (*c < UINT8_MAX)
			(*c)++;
	}
}

void
laterset_remove(laterset *ls, uint64_t h)
{
	for (int i = 0; i < 2; i++) {
		uint8_t *c = slot(ls, h, i);
		/* A saturated counter no longer knows its count. */
		if (*c > 0 && *c < UINT8_MAX)
			(*c)--;
	}
}

bool
laterset_maybe(const laterset *ls, uint64_t h)
{
	return *slot(ls, h, 0) > 0 && *slot(ls, h, 1) > 0;
}
