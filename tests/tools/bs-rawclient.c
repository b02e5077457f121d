/*
 * bs-rawclient.c: send one raw message to a hub and print the raw reply.
 *
 * Usage: bs-rawclient URL [timeout_ms]
 *
 * Reads the whole of stdin as one message, sends it on an nng req0 socket
 * dialed to URL and writes the reply, byte for byte, to stdout. The
 * integration tests build the msgpack messages themselves, so they can send
 * what the agent never would: the same batch twice, overlapping batches,
 * wrong keys, garbage. Exit 0 on a reply; 2 with a message on stderr when
 * the dial, send or receive fails or times out; 1 on bad usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#define PROG "bs-rawclient"

/* read_all reads stdin into a malloc'ed buffer; NULL on error. */
static char *
read_all(size_t *lenp)
{
	size_t cap = 65536, len = 0, n;
	char *buf = malloc(cap), *nbuf;

	if (buf == NULL)
		return NULL;
	while ((n = fread(buf + len, 1, cap - len, stdin)) > 0) {
		len += n;
		if (len < cap)
			continue;
		if ((nbuf = realloc(buf, cap * 2)) == NULL) {
			free(buf);
			return NULL;
		}
		buf = nbuf;
		cap *= 2;
	}
	if (ferror(stdin)) {
		free(buf);
		return NULL;
	}
	*lenp = len;
	return buf;
}

/* fail prints "bs-rawclient: error: what: reason" and returns 2. */
static int
fail(const char *what, int rv)
{
	fprintf(stderr, PROG ": error: %s: %s\n", what, nng_strerror(rv));
	return 2;
}

static int
exchange(const char *url, int timeout_ms, const char *msg, size_t len)
{
	nng_socket s;
	char *reply = NULL;
	size_t rlen = 0;
	int rv, code = 0;

	if ((rv = nng_req0_open(&s)) != 0)
		return fail("could not open socket", rv);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, timeout_ms);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, timeout_ms);
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 0); /* no limit */
	if ((rv = nng_dial(s, url, NULL, 0)) != 0) {
		code = fail("could not dial", rv);
		goto done;
	}
	if ((rv = nng_send(s, (void *) msg, len, 0)) != 0) {
		code = fail("could not send", rv);
		goto done;
	}
	if ((rv = nng_recv(s, &reply, &rlen, NNG_FLAG_ALLOC)) != 0) {
		code = fail("could not receive reply", rv);
		goto done;
	}
	if (fwrite(reply, 1, rlen, stdout) != rlen || fflush(stdout) != 0) {
		fprintf(stderr, PROG ": error: could not write reply: %s\n",
		    strerror(errno));
		code = 2;
	}
	nng_free(reply, rlen);
done:
	nng_close(s);
	return code;
}

int
main(int argc, char **argv)
{
	char *msg, *end;
	size_t len = 0;
	long timeout_ms = 5000;
	int code;

	if (argc < 2 || argc > 3) {
		fprintf(
		    stderr, "usage: " PROG " URL [timeout_ms] < message\n");
		return 1;
	}
	if (argc == 3) {
		errno = 0;
		timeout_ms = strtol(argv[2], &end, 10);
		if (errno != 0 || *end != '\0' || timeout_ms <= 0
		    || timeout_ms > 3600000) {
			fprintf(stderr, PROG ": error: bad timeout \"%s\"\n",
			    argv[2]);
			return 1;
		}
	}
	if ((msg = read_all(&len)) == NULL) {
		fprintf(stderr, PROG ": error: could not read stdin\n");
		return 2;
	}
	code = exchange(argv[1], (int) timeout_ms, msg, len);
	free(msg);
	return code;
}
