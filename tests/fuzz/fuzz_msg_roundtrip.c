/*
 * fuzz_msg_roundtrip.c: libFuzzer target for the encoder against the
 * decoder.
 *
 * Whatever proto_msg_decode accepts (with the default limits, and with the
 * tight ones) must encode with proto_msg_encode, and that encoding must
 * decode to a message equal to the first field by field (strings,
 * tables, every value, outcomes, seq lists) and encode again to the very
 * same bytes: the encoding of a decoded message is canonical. A mismatch
 * aborts. The same for a version 2 message: a body proto_body_decode
 * accepts must encode with proto_body_encode, inside an envelope with
 * the same auth map (proto_env_encode), and both must decode again to the
 * same auth map and message.
 */
#include "fuzz_common.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	proto_limits tight;
	proto_msg *m = NULL;
	proto_env env;
	char err[256];

	if (proto_msg_decode(data, size, NULL, &m, err, sizeof err)
	    == PROTO_OK) {
		fuzz_roundtrip(m);
		proto_msg_free(m);
	}
	fuzz_limits_tight(&tight);
	if (proto_msg_decode(data, size, &tight, &m, err, sizeof err)
	    == PROTO_OK) {
		fuzz_roundtrip(m);
		proto_msg_free(m);
	}
	if (proto_env_decode(data, size, NULL, &env, err, sizeof err)
	        == PROTO_OK
	    && env.version == PROTO_VERSION
	    && proto_body_decode(&env, NULL, &m, err, sizeof err)
	        == PROTO_OK) {
		fuzz_roundtrip_v2(m, &env);
		proto_msg_free(m);
	}
	return 0;
}
