/*
 * tls.h: TLS for the daemons' nng sockets (nng's tls+tcp:// transport,
 * mbedTLS underneath), and the permission check of files holding secrets.
 *
 * A URL whose scheme starts with "tls+" (tls+tcp://, tls+tcp4://,
 * tls+tcp6://) gets a TLS configuration; any other URL is used as before.
 * The hub builds one server configuration (tls_server_new) for all its
 * listeners; the agent builds one client configuration per dialed URL,
 * since the name it expects in the hub's certificate defaults to the
 * URL's host.
 *
 * nng runs handshakes in the background and reports no reason when one
 * fails: a dialer just keeps retrying. tls_probe makes one bounded
 * connection of its own to say why (certificate not trusted, hub not
 * speaking TLS, ...), for the agent's log.
 */
#ifndef BS_TLS_H
#define BS_TLS_H

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <stdbool.h>
#include <stddef.h>

#include "proto/err.h"

/* What one side configured; every path is a PEM file, or NULL. */
typedef struct {
	const char *ca;          /* CAs that sign the peer's certificate */
	const char *ca_key;      /* config key of ca, for messages */
	const char *cert;        /* own certificate (chain), or NULL */
	const char *key;         /* its private key, or NULL */
	const char *server_name; /* client: name expected in the hub's
	                            certificate; NULL = the URL's host */
	const char *perms_id;    /* log ID of the key permission warning */
} tls_opts;

/* tls_url says whether url uses nng's TLS transport ("tls+..."). */
bool tls_url(const char *url);

/* tls_any_url says whether one of the n URLs uses TLS. */
bool tls_any_url(char *const *urls, size_t n);

/*
 * tls_server_new builds a listener configuration from o->cert and o->key
 * (required) and, with o->ca, requires client certificates signed by it
 * (mutual TLS). The files are read here: an unreadable file, a file
 * without a certificate or key, or a key that does not belong to the
 * certificate gives PROTO_EINVAL with a reason naming the config key
 * ("tls_cert", "tls_key", o->ca_key). Warns (o->perms_id) when the key
 * file is readable by group or others. On PROTO_OK *out belongs to the
 * caller (nng_tls_config_free; a listener holds its own reference).
 */
proto_err tls_server_new(
    const tls_opts *o, nng_tls_config **out, char *err, size_t errlen);

/*
 * tls_client_new builds a dialer configuration for url: the hub's
 * certificate must be signed by o->ca (required) and name o->server_name,
 * or the host of url; with o->cert and o->key the client presents its own
 * certificate. Errors and ownership as tls_server_new, but the key file's
 * mode is not checked (the caller does it once, with tls_check_perms).
 */
proto_err tls_client_new(const char *url, const tls_opts *o,
    nng_tls_config **out, char *err, size_t errlen);

/*
 * tls_listen makes sock listen on url, with cfg when url uses TLS (cfg is
 * then required; the listener takes its own reference). PROTO_EIO with
 * "could not listen on "url": reason" in err on failure.
 */
proto_err tls_listen(nng_socket sock, const char *url, nng_tls_config *cfg,
    char *err, size_t errlen);

/*
 * tls_dial_all dials every URL of the comma-separated list in the
 * background (nng redials on its own), giving TLS URLs a configuration
 * from o. what names the list's config key in messages. PROTO_EINVAL with
 * the reason in err for an empty list, a bad URL or TLS files that cannot
 * be used.
 */
proto_err tls_dial_all(nng_socket sock, const char *list, const char *what,
    const tls_opts *o, char *err, size_t errlen);

/*
 * tls_probe connects to url once, as a peer of protocol proto (an SP
 * protocol number, e.g. 48 for req0), and tries the TLS and SP
 * handshakes, each bounded by timeout_ms. Returns false when both worked;
 * otherwise true with an actionable reason in why ("TLS handshake failed:
 * the hub's certificate could not be verified with tls_ca ..."). o gives
 * the TLS files for a tls+ URL and is ignored otherwise.
 */
bool tls_probe(const char *url, const tls_opts *o, int proto, int timeout_ms,
    char *why, size_t whylen);

/*
 * tls_probe_all runs tls_probe on every URL of the comma-separated list
 * and writes what it found, "; "-separated, into why. Returns true when it
 * found something.
 */
bool tls_probe_all(const char *list, const tls_opts *o, int proto,
    int timeout_ms, char *why, size_t whylen);

/*
 * tls_check_perms warns (log ID id) when the file at path, which holds
 * what (e.g. "the branch key"), can be read by its group or by others.
 * Returns true when it warned. A file that cannot be examined is left to
 * whoever opens it.
 */
bool tls_check_perms(const char *path, const char *id, const char *what);

#endif /* BS_TLS_H */
