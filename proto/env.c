/*
 * env.c: the version 2 envelope, [2, type, auth, body], and its auth map
 * (see proto/msg.h).
 *
 * The decoder is the first thing the hub runs on a request, before it
 * knows who sent it: it reads the envelope and the auth map with the
 * bounds-checked cursor of codec.c into a fixed-size proto_env, allocates
 * nothing, and leaves the body as bytes for the MAC check. Only then does
 * proto_body_decode (msgdec.c) decode the body.
 */
#include <msgpack.h>
#include <string.h>

#include "msg_int.h"
#include "proto_int.h"

/* The keys of an auth map, as bits of what was seen. */
enum {
	AK_BRANCH = 1 << 0,
	AK_TILL = 1 << 1,
	AK_CTR = 1 << 2,
	AK_NONCES = 1 << 3,
	AK_MAC = 1 << 4,
	AK_NONCE = 1 << 5,
};

static const struct {
	const char *name; /* the key */
	unsigned bit;     /* its AK_ bit */
} auth_keys[] = {
    {"branch", AK_BRANCH},
    {"till", AK_TILL},
    {"ctr", AK_CTR},
    {"nonces", AK_NONCES},
    {"mac", AK_MAC},
    {"nonce", AK_NONCE},
};

/* The longest value of an auth map we know: a code. */
#define AUTH_VALUE_MAX PROTO_CODE_MAX

#define REQUEST_KEYS (AK_BRANCH | AK_TILL | AK_CTR | AK_NONCES | AK_MAC)
#define ANSWER_KEYS  (AK_MAC | AK_NONCE)

bool
proto_request_type(int type)
{
	return type == PROTO_HELLO || type == PROTO_PUSH || type == PROTO_PULL;
}

/* dec_fixed reads a bin of exactly n bytes into out. */
static proto_err
dec_fixed(proto_cur *c, uint8_t *out, uint32_t n)
{
	const uint8_t *p;
	uint32_t len;
	proto_err rv;

	if ((rv = proto_cur_bin(c, &p, &len)) != PROTO_OK)
		return rv;
	if (len != n) {
		proto_seterr(
		    c->err, c->errlen, "bin of %u bytes, expected %u", len, n);
		return PROTO_EPROTO;
	}
	memcpy(out, p, n);
	return PROTO_OK;
}

/* dec_code reads a branch or till code into out (PROTO_CODE_MAX + 1). */
static proto_err
dec_code(proto_cur *c, char *out)
{
	const uint8_t *s;
	uint32_t len;
	proto_err rv;

	if ((rv = proto_cur_str(c, &s, &len)) != PROTO_OK)
		return rv;
	if (!msg_code_check(s, len, c->err, c->errlen))
		return PROTO_EPROTO;
	memcpy(out, s, len);
	out[len] = '\0';
	return PROTO_OK;
}

/* dec_nonces reads the array of nonces of a request. */
static proto_err
dec_nonces(proto_cur *c, proto_auth *a)
{
	proto_err rv;
	uint32_t n;

	if ((rv = proto_cur_array(c, &n)) != PROTO_OK)
		return rv;
	if (n > PROTO_MAX_NONCES) {
		proto_seterr(c->err, c->errlen,
		    "%u nonces exceed the limit of %d", n, PROTO_MAX_NONCES);
		return PROTO_ETOOBIG;
	}
	for (a->nnonces = 0; a->nnonces < n; a->nnonces++) {
		rv = dec_fixed(c, a->nonces[a->nnonces], PROTO_NONCE_BYTES);
		if (rv != PROTO_OK) {
			proto_preerr(
			    c->err, c->errlen, "nonce %u: ", a->nnonces);
			return rv;
		}
	}
	return PROTO_OK;
}

/* dec_auth_value reads the value of auth key bit into a. */
static proto_err
dec_auth_value(proto_cur *c, unsigned bit, proto_auth *a)
{
	proto_err rv;

	switch (bit) {
	case AK_BRANCH:
		return dec_code(c, a->branch);
	case AK_TILL:
		return dec_code(c, a->till);
	case AK_CTR:
		if ((rv = proto_cur_int(c, &a->ctr)) != PROTO_OK)
			return rv;
		if (a->ctr < 0) {
			proto_seterr(c->err, c->errlen, "negative counter");
			return PROTO_EPROTO;
		}
		return PROTO_OK;
	case AK_NONCES:
		return dec_nonces(c, a);
	case AK_MAC:
		a->has_mac = true;
		return dec_fixed(c, a->mac, PROTO_MAC_BYTES);
	default:
		a->has_nonce = true;
		return dec_fixed(c, a->nonce, PROTO_NONCE_BYTES);
	}
}

/* auth_key reads one key of an auth map: its AK_ bit, 0 if unknown. */
static proto_err
auth_key(proto_cur *c, uint32_t i, unsigned *bit, const char **name)
{
	const uint8_t *s;
	uint32_t len;
	proto_err rv;

	*bit = 0;
	if ((rv = proto_cur_str(c, &s, &len)) != PROTO_OK) {
		proto_preerr(c->err, c->errlen, "auth: key %u: ", i);
		return rv;
	}
	for (size_t k = 0; k < sizeof auth_keys / sizeof auth_keys[0]; k++)
		if (strlen(auth_keys[k].name) == len
		    && memcmp(auth_keys[k].name, s, len) == 0) {
			*bit = auth_keys[k].bit;
			*name = auth_keys[k].name;
		}
	return PROTO_OK;
}

/* auth_missing names the first key of want not in seen, or NULL. */
static const char *
auth_missing(unsigned want, unsigned seen)
{
	for (size_t k = 0; k < sizeof auth_keys / sizeof auth_keys[0]; k++)
		if ((want & auth_keys[k].bit) && !(seen & auth_keys[k].bit))
			return auth_keys[k].name;
	return NULL;
}

/*
 * dec_auth reads the auth map of a message of type: the keys of its
 * direction once each (others refused, unknown ones skipped), then the
 * required ones must have been seen.
 */
static proto_err
dec_auth(proto_cur *c, int type, proto_auth *a)
{
	bool request = proto_request_type(type);
	unsigned allowed = request ? REQUEST_KEYS : ANSWER_KEYS, seen = 0;
	unsigned need = request   ? AK_BRANCH | AK_CTR | AK_NONCES | AK_MAC
	    : type == PROTO_ERROR ? 0
	                          : AK_MAC;
	const char *name = NULL, *missing;
	uint32_t n, i;
	unsigned bit;
	proto_err rv;

	if ((rv = proto_cur_map(c, &n)) != PROTO_OK) {
		proto_preerr(c->err, c->errlen, "auth: ");
		return rv;
	}
	for (i = 0; i < n; i++) {
		if ((rv = auth_key(c, i, &bit, &name)) != PROTO_OK)
			return rv;
		if (bit == 0) {
			if ((rv = proto_cur_skip(c)) != PROTO_OK)
				proto_preerr(c->err, c->errlen,
				    "auth: unknown key %u: ", i);
			if (rv != PROTO_OK)
				return rv;
			continue;
		}
		if (!(bit & allowed)) {
			proto_seterr(c->err, c->errlen,
			    "auth: \"%s\" is not a key of %s", name,
			    request ? "a request" : "an answer");
			return PROTO_EPROTO;
		}
		if (seen & bit) {
			proto_seterr(c->err, c->errlen,
			    "auth: duplicate field \"%s\"", name);
			return PROTO_EPROTO;
		}
		seen |= bit;
		if ((rv = dec_auth_value(c, bit, a)) != PROTO_OK) {
			proto_preerr(
			    c->err, c->errlen, "auth: field \"%s\": ", name);
			return rv;
		}
	}
	if ((missing = auth_missing(need, seen)) != NULL) {
		proto_seterr(
		    c->err, c->errlen, "auth: missing field \"%s\"", missing);
		return PROTO_EPROTO;
	}
	return PROTO_OK;
}

/*
 * dec_body_bin reads the body bin. Its size is bounded by the message's
 * only: a body is larger than any one value.
 */
static proto_err
dec_body_bin(proto_cur *c, proto_env *env)
{
	const proto_limits *lim = c->lim;
	proto_limits whole = *lim;
	uint32_t len;
	proto_err rv;

	whole.max_value_bytes = UINT32_MAX;
	c->lim = &whole;
	rv = proto_cur_bin(c, &env->body, &len);
	c->lim = lim;
	if (rv != PROTO_OK) {
		proto_preerr(c->err, c->errlen, "body: ");
		return rv;
	}
	env->body_len = len;
	return PROTO_OK;
}

/* dec_v2 reads what follows the version of a version 2 envelope of n
 * elements. */
static proto_err
dec_v2(proto_cur *c, uint32_t n, proto_env *env)
{
	int64_t type;
	proto_err rv;

	if (n != 4) {
		proto_seterr(c->err, c->errlen,
		    "envelope: expected array of 4 elements, got %u", n);
		return PROTO_EPROTO;
	}
	if ((rv = proto_cur_int(c, &type)) != PROTO_OK) {
		proto_preerr(c->err, c->errlen, "envelope: type: ");
		return rv;
	}
	if (msg_body_for(type) == NULL) {
		proto_seterr(c->err, c->errlen, "unknown message type %lld",
		    (long long) type);
		return PROTO_EPROTO;
	}
	env->type = (proto_type) type;
	if ((rv = dec_auth(c, env->type, &env->auth)) != PROTO_OK
	    || (rv = dec_body_bin(c, env)) != PROTO_OK)
		return rv;
	if (proto_cur_left(c) != 0) {
		proto_seterr(c->err, c->errlen,
		    "%zu trailing bytes after the message", proto_cur_left(c));
		return PROTO_EPROTO;
	}
	return PROTO_OK;
}

proto_err
proto_env_decode(const uint8_t *buf, size_t len, const proto_limits *lim,
    proto_env *env, char *err, size_t errlen)
{
	static const uint8_t empty[1];
	proto_limits l;
	proto_cur c;
	int64_t version = 0;
	proto_err rv;
	uint32_t n;

	memset(env, 0, sizeof *env);
	proto_limits_resolve(lim, &l);
	if (len > l.max_msg_bytes) {
		proto_seterr(err, errlen,
		    "message of %zu bytes exceeds the limit of %zu bytes", len,
		    l.max_msg_bytes);
		return PROTO_ETOOBIG;
	}
	if (buf == NULL)
		buf = empty;
	/* Codes, nonces and MACs are short and of fixed size: no
	 * max_value_bytes a hub may set refuses them. */
	if (l.max_value_bytes < AUTH_VALUE_MAX)
		l.max_value_bytes = AUTH_VALUE_MAX;
	proto_cur_init(&c, buf, len, &l, err, errlen);
	if ((rv = proto_cur_array(&c, &n)) != PROTO_OK
	    || (n > 0 && (rv = proto_cur_int(&c, &version)) != PROTO_OK)) {
		proto_preerr(err, errlen, "envelope: ");
		return rv;
	}
	if (n == 0) {
		proto_seterr(err, errlen, "envelope: empty array");
		return PROTO_EPROTO;
	}
	if (version == PROTO_VERSION_PLAIN) {
		env->version = PROTO_VERSION_PLAIN;
		env->body = buf;
		env->body_len = len;
		return PROTO_OK;
	}
	if (version != PROTO_VERSION) {
		proto_seterr(err, errlen,
		    "unsupported protocol version %lld (expected %d, or %d)",
		    (long long) version, PROTO_VERSION, PROTO_VERSION_PLAIN);
		return PROTO_EVERSION;
	}
	env->version = PROTO_VERSION;
	if ((rv = dec_v2(&c, n, env)) != PROTO_OK) {
		env->body = NULL;
		env->body_len = 0;
	}
	return rv;
}

/* ---- encoding -------------------------------------------------------- */

static int
enc_write_cb(void *data, const char *buf, size_t len)
{
	return proto_buf_append(data, buf, len) == PROTO_OK ? 0 : -1;
}

static int
pack_key(msgpack_packer *pk, const char *k)
{
	return msgpack_pack_str_with_body(pk, k, strlen(k));
}

static int
pack_fixed(msgpack_packer *pk, const char *k, const uint8_t *p, size_t n)
{
	return pack_key(pk, k) | msgpack_pack_bin_with_body(pk, p, n);
}

/* enc_check refuses an env that would not decode. */
static bool
enc_check(const proto_env *env, char *err, size_t errlen)
{
	const proto_auth *a = &env->auth;

	if (msg_body_for(env->type) == NULL) {
		proto_seterr(err, errlen, "cannot encode message type %d",
		    (int) env->type);
		return false;
	}
	if (!proto_request_type(env->type)) {
		if (!a->has_mac && env->type != PROTO_ERROR) {
			proto_seterr(err, errlen, "a %s needs a mac",
			    proto_type_name(env->type));
			return false;
		}
		return true;
	}
	if (!msg_code_check((const uint8_t *) a->branch,
	        strnlen(a->branch, sizeof a->branch), err, errlen)) {
		proto_preerr(err, errlen, "branch: ");
		return false;
	}
	if (a->till[0] != '\0'
	    && !msg_code_check((const uint8_t *) a->till,
	        strnlen(a->till, sizeof a->till), err, errlen)) {
		proto_preerr(err, errlen, "till: ");
		return false;
	}
	if (a->nnonces > PROTO_MAX_NONCES || a->ctr < 0) {
		proto_seterr(err, errlen, "%u nonces or counter %lld",
		    a->nnonces, (long long) a->ctr);
		return false;
	}
	return true;
}

/* pack_request_auth writes the auth map of a request. */
static int
pack_request_auth(msgpack_packer *pk, const proto_auth *a)
{
	bool till = a->till[0] != '\0';
	int rc = msgpack_pack_map(pk, till ? 5 : 4);

	rc |= pack_key(pk, "branch") | pack_key(pk, a->branch);
	if (till)
		rc |= pack_key(pk, "till") | pack_key(pk, a->till);
	rc |= pack_key(pk, "ctr") | msgpack_pack_int64(pk, a->ctr);
	rc |= pack_key(pk, "nonces") | msgpack_pack_array(pk, a->nnonces);
	for (uint32_t i = 0; i < a->nnonces; i++)
		rc |= msgpack_pack_bin_with_body(
		    pk, a->nonces[i], PROTO_NONCE_BYTES);
	return rc | pack_fixed(pk, "mac", a->mac, PROTO_MAC_BYTES);
}

/* pack_answer_auth writes the auth map of an answer. */
static int
pack_answer_auth(msgpack_packer *pk, const proto_auth *a)
{
	int rc = msgpack_pack_map(pk, (uint32_t) a->has_mac + a->has_nonce);

	if (a->has_mac)
		rc |= pack_fixed(pk, "mac", a->mac, PROTO_MAC_BYTES);
	if (a->has_nonce)
		rc |= pack_fixed(pk, "nonce", a->nonce, PROTO_NONCE_BYTES);
	return rc;
}

/* Packs the envelope; the body's bytes too unless head_only. */
static proto_err
env_pack(const proto_env *env, bool head_only, proto_buf *out, char *err,
    size_t errlen)
{
	size_t old = out->len;
	msgpack_packer pk;
	int rc;

	if (!enc_check(env, err, errlen))
		return PROTO_EINVAL;
	msgpack_packer_init(&pk, out, enc_write_cb);
	rc = msgpack_pack_array(&pk, 4);
	rc |= msgpack_pack_uint32(&pk, PROTO_VERSION);
	rc |= msgpack_pack_uint32(&pk, (uint32_t) env->type);
	rc |= proto_request_type(env->type)
	    ? pack_request_auth(&pk, &env->auth)
	    : pack_answer_auth(&pk, &env->auth);
	rc |= msgpack_pack_bin(&pk, env->body_len);
	if (!head_only && env->body_len > 0)
		rc |= msgpack_pack_bin_body(&pk, env->body, env->body_len);
	if (rc != 0) {
		out->len = old;
		proto_seterr(err, errlen, "out of memory");
		return PROTO_ENOMEM;
	}
	return PROTO_OK;
}

proto_err
proto_env_encode(
    const proto_env *env, proto_buf *out, char *err, size_t errlen)
{
	return env_pack(env, false, out, err, errlen);
}

proto_err
proto_env_encode_head(
    const proto_env *env, proto_buf *out, char *err, size_t errlen)
{
	return env_pack(env, true, out, err, errlen);
}
