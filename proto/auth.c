/*
 * auth.c: the MACs of protocol version 2 (proto/auth.h), with mbedTLS's
 * message digests: the agent is built with mbedTLS alone (it is nng's TLS
 * engine), on Windows too, and a hash of our own would be one more thing
 * to get subtly wrong.
 */
#include "proto/auth.h"

#include <mbedtls/md.h>
#include <string.h>

/* sha256 returns mbedTLS's SHA-256, which every build of it has. */
static const mbedtls_md_info_t *
sha256(void)
{
	return mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
}

proto_err
proto_digest(const uint8_t *p, size_t n, uint8_t digest[PROTO_DIGEST_BYTES])
{
	static const uint8_t none[1];

	if (mbedtls_md(sha256(), p != NULL ? p : none, n, digest) != 0)
		return PROTO_EIO;
	return PROTO_OK;
}

proto_err
proto_key_secret(const char *key, uint8_t secret[PROTO_SECRET_BYTES])
{
	return proto_digest((const uint8_t *) key, strlen(key), secret);
}

/* One HMAC-SHA256 in steps: hmac_start, hmac_put..., hmac_end. */
typedef struct {
	mbedtls_md_context_t md; /* the HMAC state */
	int rc;                  /* first mbedTLS failure, 0 if none */
} hmac;

static void
hmac_start(hmac *h, const uint8_t secret[PROTO_SECRET_BYTES])
{
	mbedtls_md_init(&h->md);
	h->rc = mbedtls_md_setup(&h->md, sha256(), 1);
	if (h->rc == 0)
		h->rc = mbedtls_md_hmac_starts(
		    &h->md, secret, PROTO_SECRET_BYTES);
}

static void
hmac_put(hmac *h, const void *p, size_t n)
{
	if (h->rc == 0 && n > 0)
		h->rc = mbedtls_md_hmac_update(&h->md, p, n);
}

/* hmac_put_str adds a length byte and then the n bytes of s. */
static void
hmac_put_str(hmac *h, const char *s, size_t n)
{
	uint8_t len = (uint8_t) n;

	hmac_put(h, &len, 1);
	hmac_put(h, s, n);
}

static proto_err
hmac_end(hmac *h, uint8_t mac[PROTO_MAC_BYTES])
{
	if (h->rc == 0)
		h->rc = mbedtls_md_hmac_finish(&h->md, mac);
	mbedtls_md_free(&h->md);
	return h->rc == 0 ? PROTO_OK : PROTO_EIO;
}

proto_err
proto_req_mac(const uint8_t secret[PROTO_SECRET_BYTES], const proto_env *env,
    const uint8_t digest[PROTO_DIGEST_BYTES], uint8_t mac[PROTO_MAC_BYTES])
{
	const proto_auth *a = &env->auth;
	size_t nb = strnlen(a->branch, sizeof a->branch);
	size_t nt = strnlen(a->till, sizeof a->till);
	uint8_t head[5 + 8], k = (uint8_t) a->nnonces;
	uint64_t ctr = (uint64_t) a->ctr;
	hmac h;

	if (nb > PROTO_CODE_MAX || nt > PROTO_CODE_MAX
	    || a->nnonces > PROTO_MAX_NONCES)
		return PROTO_EINVAL;
	memcpy(head, "bs2q", 4);
	head[4] = (uint8_t) env->type;
	for (int i = 0; i < 8; i++)
		head[5 + i] = (uint8_t) (ctr >> (56 - 8 * i));
	hmac_start(&h, secret);
	hmac_put(&h, head, sizeof head);
	hmac_put_str(&h, a->branch, nb);
	hmac_put_str(&h, a->till, nt);
	hmac_put(&h, &k, 1);
	hmac_put(&h, a->nonces, (size_t) k * PROTO_NONCE_BYTES);
	hmac_put(&h, digest, PROTO_DIGEST_BYTES);
	return hmac_end(&h, mac);
}

proto_err
proto_rep_mac(const uint8_t secret[PROTO_SECRET_BYTES], int type,
    const uint8_t req_mac[PROTO_MAC_BYTES],
    const uint8_t digest[PROTO_DIGEST_BYTES], uint8_t mac[PROTO_MAC_BYTES])
{
	uint8_t head[5];
	hmac h;

	memcpy(head, "bs2r", 4);
	head[4] = (uint8_t) type;
	hmac_start(&h, secret);
	hmac_put(&h, head, sizeof head);
	hmac_put(&h, req_mac, PROTO_MAC_BYTES);
	hmac_put(&h, digest, PROTO_DIGEST_BYTES);
	return hmac_end(&h, mac);
}

proto_err
proto_nudge_topic(
    const uint8_t secret[PROTO_SECRET_BYTES], char kind, char *out)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t head[6], mac[PROTO_MAC_BYTES];
	hmac h;
	proto_err rv;

	memcpy(head, "bs2n", 4);
	head[4] = (uint8_t) kind;
	head[5] = 0;
	hmac_start(&h, secret);
	hmac_put(&h, head, 5);
	if ((rv = hmac_end(&h, mac)) != PROTO_OK)
		return rv;
	out[0] = kind;
	out[1] = ':';
	for (size_t i = 0; i < PROTO_TOPIC_TAG_BYTES; i++) {
		out[2 + 2 * i] = hex[mac[i] >> 4];
		out[3 + 2 * i] = hex[mac[i] & 15];
	}
	out[2 + 2 * PROTO_TOPIC_TAG_BYTES] = '\n';
	out[3 + 2 * PROTO_TOPIC_TAG_BYTES] = '\0';
	return PROTO_OK;
}

bool
proto_mac_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
	volatile uint8_t diff = 0;

	for (size_t i = 0; i < n; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}
