/*
 * webauth.c: Basic authentication of the operator listener (webauth.h).
 *
 * libcrypt (libxcrypt) verifies the hashes: writing yescrypt or bcrypt by
 * hand would be one more thing to get subtly wrong. mbedTLS (linked for
 * TLS) decodes base64 and hashes the remembered credentials.
 */
#include "webauth.h"

#include <crypt.h>
#include <errno.h>
#include <mbedtls/base64.h>
#include <mbedtls/sha256.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "platform.h"
#include "tls.h"
#include "util.h"

/* How many passed credentials are remembered, and for how long. */
#define REMEMBER    16
#define REMEMBER_MS 60000
/* Longest Authorization header looked at, and longest line of the file. */
#define HEADER_MAX   1024
#define LINE_MAX_LEN 1024

typedef struct {
	char *name; /* user name */
	char *hash; /* its crypt(3) hash */
} user;

typedef struct {
	uint8_t digest[32]; /* SHA-256 of the header value */
	int64_t until_ms;   /* remembered until (plat_mono_ms) */
} passed;

struct webauth {
	user *users;
	size_t nusers, cap;
	pthread_mutex_t mu;    /* guards below */
	passed seen[REMEMBER]; /* ring of credentials that passed */
	size_t next;           /* next slot of the ring */
};

/* parse_line adds "user:hash" to w; false with the reason in why. */
static bool
parse_line(webauth *w, char *line, char *why, size_t whylen)
{
	char *colon = strchr(line, ':');

	if (colon == NULL || colon == line) {
		snprintf(why, whylen, "expected user:hash");
		return false;
	}
	*colon = '\0';
	if (crypt_checksalt(colon + 1) != CRYPT_SALT_OK || colon[1] != '$') {
		snprintf(why, whylen,
		    "the hash of \"%s\" is not one libcrypt accepts (use "
		    "yescrypt, bcrypt or SHA-512: mkpasswd -m yescrypt)",
		    line);
		return false;
	}
	ARRAY_GROW(w->users, w->cap, w->nusers + 1);
	w->users[w->nusers].name = xstrdup(line);
	w->users[w->nusers].hash = xstrdup(colon + 1);
	w->nusers++;
	return true;
}

proto_err
webauth_load(const char *path, webauth **out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[LINE_MAX_LEN + 2], why[300];
	int lineno = 0;
	webauth *w;

	*out = NULL;
	if (f == NULL) {
		snprintf(err, errlen,
		    "could not read http_users_file \"%s\": %s", path,
		    plat_strerror(errno));
		return PROTO_EINVAL;
	}
	tls_check_perms(path, "HUB-HTTP-USERS-PERMS", "password hashes");
	w = xcalloc(1, sizeof *w);
	pthread_mutex_init(&w->mu, NULL);
	while (fgets(line, sizeof line, f) != NULL) {
		size_t n = strlen(line);
		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n > LINE_MAX_LEN) {
			snprintf(why, sizeof why, "line too long");
			goto bad;
		}
		if (n == 0 || line[0] == '#')
			continue;
		if (!parse_line(w, line, why, sizeof why))
			goto bad;
	}
	fclose(f);
	if (w->nusers == 0) {
		snprintf(
		    err, errlen, "http_users_file \"%s\" names no user", path);
		webauth_free(w);
		return PROTO_EINVAL;
	}
	*out = w;
	return PROTO_OK;
bad:
	fclose(f);
	snprintf(
	    err, errlen, "%s:%d: %s (http_users_file)", path, lineno, why);
	webauth_free(w);
	return PROTO_EINVAL;
}

/* same_digest compares two digests in constant time. */
static bool
same_digest(const uint8_t *a, const uint8_t *b)
{
	uint8_t d = 0;

	for (size_t i = 0; i < 32; i++)
		d |= (uint8_t) (a[i] ^ b[i]);
	return d == 0;
}

/* same_str compares two strings of length n in constant time. */
static bool
same_str(const char *a, const char *b, size_t n)
{
	unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= (unsigned char) (a[i] ^ b[i]);
	return d == 0;
}

/* remembered tells whether digest passed within REMEMBER_MS. */
static bool
remembered(webauth *w, const uint8_t *digest)
{
	int64_t now = plat_mono_ms();
	bool found = false;

	pthread_mutex_lock(&w->mu);
	for (size_t i = 0; i < REMEMBER; i++)
		if (w->seen[i].until_ms > now
		    && same_digest(w->seen[i].digest, digest))
			found = true;
	pthread_mutex_unlock(&w->mu);
	return found;
}

static void
remember(webauth *w, const uint8_t *digest)
{
	pthread_mutex_lock(&w->mu);
	memcpy(w->seen[w->next].digest, digest, 32);
	w->seen[w->next].until_ms = plat_mono_ms() + REMEMBER_MS;
	w->next = (w->next + 1) % REMEMBER;
	pthread_mutex_unlock(&w->mu);
}

/* verify checks "user:password" against the file. */
static bool
verify(const webauth *w, const char *cred)
{
	const char *colon = strchr(cred, ':');
	struct crypt_data *cd;
	bool ok = false;

	if (colon == NULL)
		return false;
	cd = xcalloc(1, sizeof *cd);
	for (size_t i = 0; i < w->nusers; i++) {
		const user *u = &w->users[i];
		const char *h;
		if (strlen(u->name) != (size_t) (colon - cred)
		    || memcmp(u->name, cred, (size_t) (colon - cred)) != 0)
			continue;
		h = crypt_rn(colon + 1, u->hash, cd, (int) sizeof *cd);
		ok = h != NULL && strlen(h) == strlen(u->hash)
		    && same_str(h, u->hash, strlen(h));
		break;
	}
	free(cd);
	return ok;
}

bool
webauth_check(webauth *w, const char *authorization)
{
	unsigned char cred[HEADER_MAX];
	uint8_t digest[32];
	size_t n = 0, len;
	const char *b64;
	bool ok;

	if (authorization == NULL || (len = strlen(authorization)) > HEADER_MAX
	    || strncasecmp(authorization, "Basic ", 6) != 0)
		return false;
	b64 = authorization + 6;
	while (*b64 == ' ')
		b64++;
	if (mbedtls_sha256_ret(
	        (const unsigned char *) authorization, len, digest, 0)
	    != 0)
		return false;
	if (remembered(w, digest))
		return true;
	if (mbedtls_base64_decode(cred, sizeof cred - 1, &n,
	        (const unsigned char *) b64, strlen(b64))
	        != 0
	    || memchr(cred, '\0', n) != NULL)
		return false;
	cred[n] = '\0';
	ok = verify(w, (const char *) cred);
	memset(cred, 0, sizeof cred);
	if (ok)
		remember(w, digest);
	return ok;
}

void
webauth_free(webauth *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->nusers; i++) {
		free(w->users[i].name);
		free(w->users[i].hash);
	}
	free(w->users);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
