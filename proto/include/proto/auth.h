/*
 * auth.h: the MACs of protocol version 2 (see msg.h).
 *
 * A credential (a branch's or a till's key, 64 hex digits) is never sent.
 * Both sides hold its secret S = SHA-256(key text): the agent computes it
 * from its key, the hub stores it (branchsync.branch.key_hash and
 * branchsync.till.key_hash). A request carries
 *
 *   mac = HMAC-SHA256(S, "bs2q" || type || ctr || len(branch) || branch
 *                        || len(till) || till || nonces || SHA-256(body))
 *
 *   "bs2q"   4 bytes   domain: a version 2 request
 *   type     1 byte    the message type
 *   ctr      8 bytes   the auth map's counter, big-endian
 *   branch   1 + n     its length (1..64), then its bytes
 *   till     1 + n     its length (0: none), then its bytes
 *   nonces   1 + 16k   their count k (0..8), then each nonce
 *   digest   32 bytes  SHA-256 of the body bytes (the bin of the envelope)
 *
 * and an answer to it
 *
 *   mac = HMAC-SHA256(S, "bs2r" || type || request mac || SHA-256(body))
 *
 * so an answer is bound to the request it answers, and neither can be
 * forged, altered or moved to another connection without S. The hub
 * checks that the nonce it issued to the connection is among the nonces
 * and that ctr is above the last one it accepted there, which refuses a
 * replayed request.
 *
 * The digests are computed once per body: a hub checking a request
 * against a rotated key's two secrets hashes the body once.
 */
#ifndef PROTO_AUTH_H
#define PROTO_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"
#include "proto/msg.h"

#define PROTO_SECRET_BYTES 32 /* S = SHA-256(key text) */
#define PROTO_DIGEST_BYTES 32 /* SHA-256 */

/* proto_key_secret computes S = SHA-256 of the key's text bytes.
 * PROTO_EIO if the hash fails (it does not, with mbedTLS). */
proto_err proto_key_secret(
    const char *key, uint8_t secret[PROTO_SECRET_BYTES]);

/* proto_digest computes SHA-256 of the n bytes at p (p may be NULL if n
 * is 0). PROTO_EIO if the hash fails. */
proto_err proto_digest(
    const uint8_t *p, size_t n, uint8_t digest[PROTO_DIGEST_BYTES]);

/*
 * proto_req_mac computes the MAC of a request: env's type and auth map
 * (branch, till, ctr, nonces; not its mac) and digest, the SHA-256 of the
 * body. PROTO_EINVAL for a branch or till longer than PROTO_CODE_MAX or
 * more than PROTO_MAX_NONCES nonces; PROTO_EIO if the hash fails.
 */
proto_err proto_req_mac(const uint8_t secret[PROTO_SECRET_BYTES],
    const proto_env *env, const uint8_t digest[PROTO_DIGEST_BYTES],
    uint8_t mac[PROTO_MAC_BYTES]);

/*
 * proto_rep_mac computes the MAC of an answer of type to the request
 * whose MAC was req_mac, over digest, the SHA-256 of the answer's body.
 * PROTO_EIO if the hash fails.
 */
proto_err proto_rep_mac(const uint8_t secret[PROTO_SECRET_BYTES], int type,
    const uint8_t req_mac[PROTO_MAC_BYTES],
    const uint8_t digest[PROTO_DIGEST_BYTES], uint8_t mac[PROTO_MAC_BYTES]);

/*
 * Nudge topics (hub/nudge.h): the publisher names a branch by a tag only
 * holders of one of its keys can compute, never by its code. The topic
 * of kind ('b': master data, 'r': rejects) for the credential whose
 * secret is S is kind, ':', the first PROTO_TOPIC_TAG_BYTES of
 * HMAC-SHA256(S, "bs2n" kind) in hex, and a newline. out needs
 * PROTO_TOPIC_MAX bytes (NUL included). PROTO_EIO if the hash fails.
 */
#define PROTO_TOPIC_TAG_BYTES 16
#define PROTO_TOPIC_MAX       (2 + 2 * PROTO_TOPIC_TAG_BYTES + 2)
proto_err proto_nudge_topic(
    const uint8_t secret[PROTO_SECRET_BYTES], char kind, char *out);

/* proto_mac_equal compares n bytes in a time that does not depend on
 * where they differ. */
bool proto_mac_equal(const uint8_t *a, const uint8_t *b, size_t n);

#endif /* PROTO_AUTH_H */
