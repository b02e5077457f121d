/*
 * err.h: the one error enum of branchsync.
 *
 * Every module returns a proto_err. Codes from errno, nng, SQLite and libpq
 * are mapped to these in the one function that receives them; the text that
 * goes with a failure travels in the caller's error buffer.
 */
#ifndef PROTO_ERR_H
#define PROTO_ERR_H

typedef enum {
	PROTO_OK = 0,    /* success */
	PROTO_ENOMEM,    /* out of memory */
	PROTO_EINVAL,    /* invalid argument or configuration */
	PROTO_EPROTO,    /* malformed or unexpected message */
	PROTO_ETIMEDOUT, /* an operation timed out */
	PROTO_ECLOSED,   /* peer or object closed */
	PROTO_EDB,       /* database error (SQLite or PostgreSQL) */
	PROTO_EIO,       /* I/O or network error */
	PROTO_EAUTH,     /* authentication failed */
	PROTO_ETOOBIG,   /* a size or count limit was exceeded */
	PROTO_EVERSION,  /* unsupported protocol version */
	PROTO_ENONCE,    /* sign the request with the nonce of this
	                    connection (hub -> agent, see msg.h) */
	PROTO_ERR_COUNT  /* number of codes; not an error */
} proto_err;

/* proto_strerror returns a static, human-readable name for err. */
const char *proto_strerror(int err);

#endif /* PROTO_ERR_H */
