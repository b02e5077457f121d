/*
 * guard.c: failed authentications per peer address (see guard.h). A
 * linear table: it is searched on a failure and when a connection comes,
 * both far rarer than requests.
 */
#include "guard.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct {
	char key[GUARD_KEY_MAX]; /* the address, "" for a free entry */
	int64_t window_ms;       /* start of its counting window */
	int64_t count;           /* failures in that window */
	int64_t blocked_until;   /* blocked before this time, 0 if not */
	int64_t seen_ms;         /* last failure */
} peer;

struct guard {
	int64_t max;       /* failures that block */
	int64_t window_ms; /* the window, and the block's length */
	peer *peers;       /* GUARD_MAX_PEERS entries */
};

guard *
guard_new(int64_t max, int64_t window_ms)
{
	guard *g = xcalloc(1, sizeof *g);

	g->max = max;
	g->window_ms = window_ms;
	g->peers = xcalloc(GUARD_MAX_PEERS, sizeof *g->peers);
	return g;
}

void
guard_free(guard *g)
{
	if (g == NULL)
		return;
	free(g->peers);
	free(g);
}

void
guard_key(const nng_sockaddr *sa, char *key)
{
	uint8_t a6[16];
	char ip[INET6_ADDRSTRLEN];

	key[0] = '\0';
	if (sa->s_family == NNG_AF_INET) {
		if (inet_ntop(AF_INET, &sa->s_in.sa_addr, ip, sizeof ip))
			snprintf(key, GUARD_KEY_MAX, "%s", ip);
	} else if (sa->s_family == NNG_AF_INET6) {
		memcpy(a6, sa->s_in6.sa_addr, 8);
		memset(a6 + 8, 0, 8);
		if (inet_ntop(AF_INET6, a6, ip, sizeof ip))
			snprintf(key, GUARD_KEY_MAX, "%s/64", ip);
	}
}

/* find returns the entry of key, or NULL. */
static peer *
find(guard *g, const char *key)
{
	for (size_t i = 0; i < GUARD_MAX_PEERS; i++)
		if (g->peers[i].key[0] != '\0'
		    && !strcmp(g->peers[i].key, key))
			return &g->peers[i];
	return NULL;
}

/* take returns a free entry, or the one seen least recently. */
static peer *
take(guard *g, int64_t now_ms)
{
	peer *best = NULL;

	for (size_t i = 0; i < GUARD_MAX_PEERS; i++) {
		peer *p = &g->peers[i];
		bool blocked = p->blocked_until > now_ms;
		if (p->key[0] == '\0')
			return p;
		if (best == NULL
		    || ((best->blocked_until > now_ms) && !blocked)
		    || ((best->blocked_until > now_ms) == blocked
		        && p->seen_ms < best->seen_ms))
			best = p;
	}
	return best;
}

bool
guard_fail(guard *g, const char *key, int64_t now_ms)
{
	peer *p;

	if (key[0] == '\0')
		return false;
	if ((p = find(g, key)) == NULL) {
		p = take(g, now_ms);
		memset(p, 0, sizeof *p);
		snprintf(p->key, sizeof p->key, "%s", key);
		p->window_ms = now_ms;
	}
	p->seen_ms = now_ms;
	if (p->blocked_until > now_ms)
		return false;
	if (now_ms - p->window_ms >= g->window_ms) {
		p->window_ms = now_ms;
		p->count = 0;
	}
	if (++p->count < g->max)
		return false;
	p->blocked_until = now_ms + g->window_ms;
	p->window_ms = p->blocked_until;
	p->count = 0;
	return true;
}

bool
guard_blocked(guard *g, const char *key, int64_t now_ms)
{
	peer *p;

	if (key[0] == '\0' || (p = find(g, key)) == NULL)
		return false;
	return p->blocked_until > now_ms;
}
