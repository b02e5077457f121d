/*
 * bs-rawclient.c: send raw messages to a hub and print the raw replies.
 *
 * Usage: bs-rawclient URL [timeout_ms [-s]]
 *
 * Reads the whole of stdin as one message, sends it on an nng req0 socket
 * dialed to URL and writes the reply, byte for byte, to stdout. With -s
 * (a session), stdin is a sequence of messages, each preceded by its
 * length (4 bytes, big-endian), all sent on the same connection; each
 * reply goes to stdout the same way, until stdin ends. A session is what
 * protocol version 2 needs: the hub gives each connection a nonce that
 * the next request must be signed for (tests/lib/bswire.py signs). The
 * integration tests build the msgpack messages themselves, so they can
 * send what the agent never would: the same batch twice, overlapping
 * batches, wrong keys, replays, garbage. Exit 0 on a reply (a session:
 * once stdin ends); 2 with a message on stderr when the dial, send or
 * receive fails or times out; 1 on bad usage.
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

/* one sends msg on s and writes its reply, framed if session; 0 or 2. */
static int
one(nng_socket s, const char *msg, size_t len, int session)
{
	char *reply = NULL;
	unsigned char head[4];
	size_t rlen = 0;
	int rv, code = 0;

	if ((rv = nng_send(s, (void *) msg, len, 0)) != 0)
		return fail("could not send", rv);
	if ((rv = nng_recv(s, &reply, &rlen, NNG_FLAG_ALLOC)) != 0)
		return fail("could not receive reply", rv);
	head[0] = (unsigned char) (rlen >> 24);
	head[1] = (unsigned char) (rlen >> 16);
	head[2] = (unsigned char) (rlen >> 8);
	head[3] = (unsigned char) rlen;
	if ((session && fwrite(head, 1, 4, stdout) != 4)
	    || fwrite(reply, 1, rlen, stdout) != rlen || fflush(stdout) != 0) {
		fprintf(stderr, PROG ": error: could not write reply: %s\n",
		    strerror(errno));
		code = 2;
	}
	nng_free(reply, rlen);
	return code;
}

/* next reads one framed message of a session; NULL at the end of stdin. */
static char *
next(size_t *lenp)
{
	unsigned char head[4];
	char *msg;
	size_t n;

	if (fread(head, 1, 4, stdin) != 4)
		return NULL;
	n = (size_t) head[0] << 24 | (size_t) head[1] << 16
	    | (size_t) head[2] << 8 | head[3];
	if ((msg = malloc(n ? n : 1)) == NULL)
		return NULL;
	if (fread(msg, 1, n, stdin) != n) {
		free(msg);
		return NULL;
	}
	*lenp = n;
	return msg;
}

static int
exchange(const char *url, int timeout_ms, int session)
{
	nng_socket s;
	char *msg;
	size_t len = 0;
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
	if (!session) {
		if ((msg = read_all(&len)) == NULL) {
			fprintf(
			    stderr, PROG ": error: could not read stdin\n");
			code = 2;
			goto done;
		}
		code = one(s, msg, len, 0);
		free(msg);
		goto done;
	}
	while (code == 0 && (msg = next(&len)) != NULL) {
		code = one(s, msg, len, 1);
		free(msg);
	}
done:
	nng_close(s);
	return code;
}

int
main(int argc, char **argv)
{
	char *end;
	long timeout_ms = 5000;
	int session = argc == 4 && !strcmp(argv[3], "-s");

	if (argc < 2 || argc > 4 || (argc == 4 && !session)) {
		fprintf(stderr,
		    "usage: " PROG " URL [timeout_ms [-s]] < message(s)\n");
		return 1;
	}
	if (argc >= 3) {
		errno = 0;
		timeout_ms = strtol(argv[2], &end, 10);
		if (errno != 0 || *end != '\0' || timeout_ms <= 0
		    || timeout_ms > 3600000) {
			fprintf(stderr, PROG ": error: bad timeout \"%s\"\n",
			    argv[2]);
			return 1;
		}
	}
	return exchange(argv[1], (int) timeout_ms, session);
}
