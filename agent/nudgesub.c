/* nudgesub.c: see nudgesub.h. */
#include "nudgesub.h"

#include <nng/protocol/pubsub0/sub.h>
#include <stdio.h>
#include <string.h>

#include "proto/auth.h"

proto_err
nudgesub_open(const agent_config *conf, const char *kinds,
    nng_pipe_cb on_connect, void *arg, nng_socket *out, char *err,
    size_t errlen)
{
	char topic[PROTO_TOPIC_MAX];
	uint8_t secret[PROTO_SECRET_BYTES];
	proto_err pe;
	int rv;

	/* The branch is named by a tag of its key (proto/auth.h). */
	if (proto_key_secret(conf->secret, secret) != PROTO_OK) {
		snprintf(err, errlen, "could not hash the branch key");
		return PROTO_EIO;
	}

	if ((rv = nng_sub0_open(out)) != 0) {
		snprintf(err, errlen, "could not open nudge socket: %s",
		    nng_strerror(rv));
		return PROTO_EIO;
	}
	for (const char *k = kinds; *k != '\0'; k++) {
		if (*k == '*')
			snprintf(topic, sizeof topic, "*\n");
		else if (proto_nudge_topic(secret, *k, topic) != PROTO_OK) {
			snprintf(err, errlen, "could not hash the branch key");
			nng_close(*out);
			return PROTO_EIO;
		}
		nng_socket_set(
		    *out, NNG_OPT_SUB_SUBSCRIBE, topic, strlen(topic));
	}
	nng_socket_set_size(*out, NNG_OPT_RECVMAXSZ, NUDGESUB_MAX_BYTES);
	if (on_connect != NULL)
		nng_pipe_notify(*out, NNG_PIPE_EV_ADD_POST, on_connect, arg);
	if ((pe = agent_config_dial(
	         *out, conf, conf->nudge, "nudge", err, errlen))
	    != PROTO_OK)
		nng_close(*out);
	return pe;
}
