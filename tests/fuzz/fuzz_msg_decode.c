/*
 * fuzz_msg_decode.c: libFuzzer target for the decoders both daemons run
 * on what the network sends: proto_env_decode and proto_body_decode
 * (protocol version 2), proto_msg_decode (version 1).
 *
 * Every input is decoded four times: with the default limits (NULL), with
 * the limits of the hub's workers (hub/server.c: the defaults of
 * max_message_bytes and max_batch_events), with those of the agent's
 * downstream (agent/downstream.c: 32 MiB, max_events raised to a large
 * pull_max_rows) and with tight limits that short inputs can exceed. Each
 * decode must either refuse the input with a code and a reason, or give a
 * message that holds every invariant of proto/msg.h under the limits in
 * force (fuzz_msg_check). The side that would receive the message (agent:
 * WELCOME, ACK, CHANGES, ERROR; hub: HELLO, PUSH, PULL) is checked by type.
 * Limits only ever refuse more: what decodes under tight limits decodes
 * the same under the defaults, and a malformed input (PROTO_EPROTO or
 * PROTO_EVERSION with the defaults) is never accepted under tight ones.
 * The round trip through the encoder is fuzz_msg_roundtrip's job.
 *
 * Version 2: the envelope is decoded once (it allocates nothing and
 * depends on max_msg_bytes only) and must hold what fuzz_env_check says;
 * its body is then decoded under the same four limits, with the same
 * checks, and a request's header must carry the auth map's branch and
 * till and no key.
 */
#include <string.h>

#include "fuzz_common.h"

/* The hub workers' limits (hub/config.c hub_config_limits) with hub.ini's
 * defaults; max_tables, max_columns and max_value_bytes default to the
 * protocol's. */
static void
hub_limits(proto_limits *lim)
{
	proto_limits_default(lim);
	lim->max_msg_bytes = 16777216; /* max_message_bytes */
	lim->max_events = 10000;       /* max_batch_events */
}

/* The agent's limits for answers (agent/config.c config_limits) with
 * agent.ini's defaults and pull_max_rows at its top. */
static void
agent_limits(proto_limits *lim)
{
	proto_limits_default(lim);
	lim->max_msg_bytes = 33554432;   /* max_message_bytes */
	lim->max_value_bytes = 16777216; /* max_value_bytes */
	lim->max_columns = 1600;         /* max_columns */
	lim->max_events = 100000;        /* pull_max_rows */
}

static bool
agent_bound(int type)
{
	return type == PROTO_WELCOME || type == PROTO_ACK
	    || type == PROTO_CHANGES || type == PROTO_ERROR;
}

/* decode_one decodes under lim and checks the result; the message or NULL.
 */
static proto_msg *
decode_one(
    const uint8_t *data, size_t size, const proto_limits *lim, proto_err *rv)
{
	proto_msg *m = (proto_msg *) 1;
	proto_limits r;
	char err[256];

	err[0] = '\0';
	*rv = proto_msg_decode(data, size, lim, &m, err, sizeof err);
	if (*rv != PROTO_OK) {
		FUZZ_ASSERT(m == NULL && err[0] != '\0');
		FUZZ_ASSERT(memchr(err, '\0', sizeof err) != NULL);
		FUZZ_ASSERT(*rv == PROTO_EPROTO || *rv == PROTO_EVERSION
		    || *rv == PROTO_ETOOBIG || *rv == PROTO_ENOMEM);
		return NULL;
	}
	FUZZ_ASSERT(m != NULL);
	proto_limits_resolve(lim, &r);
	fuzz_msg_check(m, &r);
	/* Both sides' dispatch split the types between them. */
	FUZZ_ASSERT(agent_bound(m->type)
	    != (m->type == PROTO_HELLO || m->type == PROTO_PUSH
	        || m->type == PROTO_PULL));
	return m;
}

/* body_one decodes env's body under lim and checks it, as decode_one. */
static proto_msg *
body_one(const proto_env *env, const proto_limits *lim, proto_err *rv)
{
	const proto_agent_hdr *h = NULL;
	proto_msg *m = (proto_msg *) 1;
	proto_limits r;
	char err[256];

	err[0] = '\0';
	*rv = proto_body_decode(env, lim, &m, err, sizeof err);
	if (*rv != PROTO_OK) {
		FUZZ_ASSERT(m == NULL && err[0] != '\0');
		FUZZ_ASSERT(*rv == PROTO_EPROTO || *rv == PROTO_ETOOBIG
		    || *rv == PROTO_ENOMEM);
		return NULL;
	}
	proto_limits_resolve(lim, &r);
	fuzz_msg_check(m, &r);
	FUZZ_ASSERT(m->type == env->type);
	if (m->type == PROTO_HELLO)
		h = &m->u.hello.hdr;
	else if (m->type == PROTO_PUSH)
		h = &m->u.push.hdr;
	else if (m->type == PROTO_PULL)
		h = &m->u.pull.hdr;
	if (h != NULL) {
		FUZZ_ASSERT(
		    h->key == NULL && !strcmp(h->branch, env->auth.branch));
		FUZZ_ASSERT(env->auth.till[0] == '\0'
		        ? h->till == NULL
		        : !strcmp(h->till, env->auth.till));
	}
	return m;
}

/*
 * agree checks one input's four decodes, with the defaults, the hub's,
 * the agent's and tight limits (m and r in that order), then frees them.
 * The hub's limits are the defaults; the agent's only go higher, so a
 * malformed input (or, with version_err, an unknown version) fails with
 * the agent's limits too, and the tight ones accept nothing more.
 */
static void
agree(proto_msg *m[4], const proto_err r[4], bool version_err)
{
	FUZZ_ASSERT(r[0] == r[1]);
	if (m[0] != NULL) {
		fuzz_msg_same(m[0], m[1]);
		FUZZ_ASSERT(m[2] != NULL);
		fuzz_msg_same(m[0], m[2]);
	}
	if (r[0] == PROTO_EPROTO || (version_err && r[0] == PROTO_EVERSION))
		FUZZ_ASSERT(r[2] == r[0] && r[3] != PROTO_OK);
	if (m[3] != NULL) {
		FUZZ_ASSERT(m[0] != NULL);
		fuzz_msg_same(m[0], m[3]);
	}
	for (int i = 0; i < 4; i++)
		proto_msg_free(m[i]);
}

/* decode_v2 runs the version 2 decoders on the input. */
static void
decode_v2(const uint8_t *data, size_t size, const proto_limits *hub,
    const proto_limits *agent, const proto_limits *tight)
{
	proto_msg *md, *mh, *ma, *mt;
	proto_err re, rd, rh, ra, rt;
	proto_env env;
	char err[256];

	err[0] = '\0';
	re = proto_env_decode(data, size, NULL, &env, err, sizeof err);
	if (re != PROTO_OK) {
		FUZZ_ASSERT(err[0] != '\0' && env.body == NULL);
		FUZZ_ASSERT(re == PROTO_EPROTO || re == PROTO_EVERSION
		    || re == PROTO_ETOOBIG);
		return;
	}
	fuzz_env_check(&env, data, size);
	if (env.version != PROTO_VERSION)
		return;
	md = body_one(&env, NULL, &rd);
	mh = body_one(&env, hub, &rh);
	ma = body_one(&env, agent, &ra);
	mt = body_one(&env, tight, &rt);
	agree((proto_msg *[]) {md, mh, ma, mt}, (proto_err[]) {rd, rh, ra, rt},
	    false);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	proto_limits hub, agent, tight;
	proto_msg *md, *mh, *ma, *mt;
	proto_err rd, rh, ra, rt;

	hub_limits(&hub);
	agent_limits(&agent);
	fuzz_limits_tight(&tight);
	md = decode_one(data, size, NULL, &rd);
	mh = decode_one(data, size, &hub, &rh);
	ma = decode_one(data, size, &agent, &ra);
	mt = decode_one(data, size, &tight, &rt);
	agree((proto_msg *[]) {md, mh, ma, mt}, (proto_err[]) {rd, rh, ra, rt},
	    true);
	decode_v2(data, size, &hub, &agent, &tight);
	return 0;
}
