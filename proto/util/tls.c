/*
 * tls.c: TLS configurations for nng listeners and dialers, the handshake
 * probe and the secret-file permission check.
 *
 * The PEM files are read here rather than by nng (nng_tls_config_ca_file,
 * nng_tls_config_cert_key_file) so that an error names the file and the
 * config key. nng (mbedTLS) does not check that a private key belongs to
 * its certificate; a mismatch would only show as every handshake failing,
 * so the pair is checked at startup, with mbedTLS, nng's own TLS engine.
 */
#include "tls.h"

#include <errno.h>
#include <nng/supplemental/util/platform.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "log.h"
#include "platform.h"
#include "util.h"

/* Largest PEM file read: a long CA bundle fits comfortably. */
#define PEM_MAX_BYTES (1u << 20)

bool
tls_url(const char *url)
{
	return url != NULL && strncmp(url, "tls+", 4) == 0;
}

bool
tls_any_url(char *const *urls, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (tls_url(urls[i]))
			return true;
	return false;
}

bool
tls_check_perms(const char *path, const char *id, const char *what)
{
	char how[2048];

	if (path == NULL || !plat_file_exposed(path, how, sizeof how))
		return false;
	log_warn(id, "\"%s\" holds %s but is %s", path, what, how);
	return true;
}

/* read_pem reads the file of config key `key` into a NUL-ended string. */
static char *
read_pem(const char *path, const char *key, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (f == NULL) {
		snprintf(err, errlen, "could not read %s \"%s\": %s", key,
		    path, plat_strerror(errno));
		return NULL;
	}
	buf = xmalloc(PEM_MAX_BYTES + 1);
	n = fread(buf, 1, PEM_MAX_BYTES + 1, f);
	if (ferror(f) || n > PEM_MAX_BYTES) {
		snprintf(err, errlen, "could not read %s \"%s\": %s", key,
		    path,
		    ferror(f) ? plat_strerror(errno) : "larger than 1 MB");
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/*
 * pem_certs tells whether a PEM text holds at least one certificate
 * mbedTLS can parse; crt (if not NULL) receives them.
 */
static bool
pem_certs(const char *pem, mbedtls_x509_crt *crt)
{
	return mbedtls_x509_crt_parse(
	           crt, (const unsigned char *) pem, strlen(pem) + 1)
	    >= 0
	    && crt->version != 0;
}

/*
 * pair_check: certpem holds a certificate, keypem an unencrypted private
 * key (an encrypted one is refused, not prompted for), and the key is the
 * certificate's.
 */
static bool
pair_check(const tls_opts *o, const char *certpem, const char *keypem,
    char *err, size_t errlen)
{
	mbedtls_x509_crt crt;
	mbedtls_pk_context pk;
	bool ok = false;

	mbedtls_x509_crt_init(&crt);
	mbedtls_pk_init(&pk);
	if (!pem_certs(certpem, &crt))
		snprintf(err, errlen, "no PEM certificate in tls_cert \"%s\"",
		    o->cert);
	else if (mbedtls_pk_parse_key(&pk, (const unsigned char *) keypem,
	             strlen(keypem) + 1, NULL, 0)
	    != 0)
		snprintf(err, errlen,
		    "no unencrypted PEM private key in tls_key \"%s\"",
		    o->key);
	else if (mbedtls_pk_check_pair(&crt.pk, &pk) != 0)
		snprintf(err, errlen,
		    "tls_key \"%s\" is not the private key of the "
		    "certificate in tls_cert \"%s\"",
		    o->key, o->cert);
	else
		ok = true;
	mbedtls_pk_free(&pk);
	mbedtls_x509_crt_free(&crt);
	return ok;
}

/* own_cert loads o->cert and o->key into cfg; warn: check the key's mode. */
static proto_err
own_cert(nng_tls_config *cfg, const tls_opts *o, bool warn, char *err,
    size_t errlen)
{
	char *cert = NULL, *key = NULL;
	proto_err pe = PROTO_EINVAL;
	int rv;

	if ((cert = read_pem(o->cert, "tls_cert", err, errlen)) == NULL
	    || (key = read_pem(o->key, "tls_key", err, errlen)) == NULL
	    || !pair_check(o, cert, key, err, errlen))
		goto done;
	if (warn)
		tls_check_perms(o->key, o->perms_id, "a TLS private key");
	if ((rv = nng_tls_config_own_cert(cfg, cert, key, NULL)) != 0) {
		snprintf(err, errlen,
		    "could not use tls_cert \"%s\" with tls_key \"%s\": %s",
		    o->cert, o->key, nng_strerror(rv));
		goto done;
	}
	pe = PROTO_OK;
done:
	free(cert);
	free(key);
	return pe;
}

/* ca_chain loads o->ca as the CAs that must sign the peer. */
static proto_err
ca_chain(nng_tls_config *cfg, const tls_opts *o, char *err, size_t errlen)
{
	char *pem = read_pem(o->ca, o->ca_key, err, errlen);
	mbedtls_x509_crt crt;
	bool has;
	int rv;

	if (pem == NULL)
		return PROTO_EINVAL;
	mbedtls_x509_crt_init(&crt);
	has = pem_certs(pem, &crt);
	mbedtls_x509_crt_free(&crt);
	if (!has) {
		snprintf(err, errlen, "no PEM certificate in %s \"%s\"",
		    o->ca_key, o->ca);
		free(pem);
		return PROTO_EINVAL;
	}
	rv = nng_tls_config_ca_chain(cfg, pem, NULL);
	free(pem);
	if (rv != 0) {
		snprintf(err, errlen, "could not use %s \"%s\": %s", o->ca_key,
		    o->ca, nng_strerror(rv));
		return PROTO_EINVAL;
	}
	return nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED) == 0
	    ? PROTO_OK
	    : PROTO_EINVAL;
}

proto_err
tls_server_new(
    const tls_opts *o, nng_tls_config **out, char *err, size_t errlen)
{
	nng_tls_config *cfg;
	int rv;

	*out = NULL;
	if ((rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_SERVER)) != 0) {
		snprintf(
		    err, errlen, "could not set up TLS: %s", nng_strerror(rv));
		return PROTO_EIO;
	}
	if (own_cert(cfg, o, true, err, errlen) != PROTO_OK
	    || (o->ca != NULL && ca_chain(cfg, o, err, errlen) != PROTO_OK)) {
		nng_tls_config_free(cfg);
		return PROTO_EINVAL;
	}
	*out = cfg;
	return PROTO_OK;
}

/* url_host copies the host of url into buf; false if it has none. */
static bool
url_host(const char *url, char *buf, size_t len)
{
	nng_url *u;
	bool ok;

	if (nng_url_parse(&u, url) != 0)
		return false;
	ok = u->u_hostname != NULL && u->u_hostname[0] != '\0'
	    && strlen(u->u_hostname) < len;
	if (ok)
		snprintf(buf, len, "%s", u->u_hostname);
	nng_url_free(u);
	return ok;
}

/*
 * client_config builds a dialer configuration: auth is the verification
 * of the hub's certificate, with_name whether its name is checked (the
 * probe turns each off in turn to tell which one fails), warn whether to
 * check the key file's mode (once, not at every probe).
 */
static proto_err
client_config(const char *url, const tls_opts *o, nng_tls_auth_mode auth,
    bool with_name, bool warn, nng_tls_config **out, char *err, size_t errlen)
{
	nng_tls_config *cfg;
	char host[256];
	const char *name = o->server_name;
	int rv;

	*out = NULL;
	if (name == NULL && !url_host(url, host, sizeof host)) {
		snprintf(err, errlen, "no host name in \"%s\"", url);
		return PROTO_EINVAL;
	}
	if ((rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT)) != 0) {
		snprintf(
		    err, errlen, "could not set up TLS: %s", nng_strerror(rv));
		return PROTO_EIO;
	}
	if (ca_chain(cfg, o, err, errlen) != PROTO_OK
	    || (o->cert != NULL
	        && own_cert(cfg, o, warn, err, errlen) != PROTO_OK))
		goto fail;
	if ((with_name
	        && (rv = nng_tls_config_server_name(cfg, name ? name : host))
	            != 0)
	    || (rv = nng_tls_config_auth_mode(cfg, auth)) != 0) {
		snprintf(
		    err, errlen, "could not set up TLS: %s", nng_strerror(rv));
		goto fail;
	}
	*out = cfg;
	return PROTO_OK;
fail:
	nng_tls_config_free(cfg);
	return PROTO_EINVAL;
}

proto_err
tls_client_new(const char *url, const tls_opts *o, nng_tls_config **out,
    char *err, size_t errlen)
{
	/* Dialers are built per URL: the agent checks the key once. */
	return client_config(
	    url, o, NNG_TLS_AUTH_MODE_REQUIRED, true, false, out, err, errlen);
}

proto_err
tls_listen(nng_socket sock, const char *url, nng_tls_config *cfg, char *err,
    size_t errlen)
{
	nng_listener l;
	int rv;

	if ((rv = nng_listener_create(&l, sock, url)) != 0)
		goto fail;
	if (tls_url(url)
	    && (rv = cfg == NULL
	               ? NNG_EINVAL
	               : nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg))
	        != 0) {
		nng_listener_close(l);
		goto fail;
	}
	if ((rv = nng_listener_start(l, 0)) != 0) {
		nng_listener_close(l);
		goto fail;
	}
	return PROTO_OK;
fail:
	snprintf(err, errlen, "could not listen on \"%s\": %s", url,
	    nng_strerror(rv));
	return PROTO_EIO;
}

/* dial_one starts a background dialer to url. */
static proto_err
dial_one(nng_socket sock, const char *url, const char *what, const tls_opts *o,
    char *err, size_t errlen)
{
	nng_tls_config *cfg = NULL;
	nng_dialer d;
	proto_err pe;
	int rv;

	if (tls_url(url)
	    && (pe = tls_client_new(url, o, &cfg, err, errlen)) != PROTO_OK)
		return pe;
	if ((rv = nng_dialer_create(&d, sock, url)) == 0) {
		if (cfg != NULL)
			rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
		/* Non-blocking: nng keeps redialing in the background. */
		if (rv == 0)
			rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
		if (rv != 0)
			nng_dialer_close(d);
	}
	if (cfg != NULL)
		nng_tls_config_free(cfg); /* the dialer holds its own */
	if (rv != 0) {
		snprintf(err, errlen, "could not dial %s \"%s\": %s", what,
		    url, nng_strerror(rv));
		return PROTO_EINVAL;
	}
	return PROTO_OK;
}

proto_err
tls_dial_all(nng_socket sock, const char *list, const char *what,
    const tls_opts *o, char *err, size_t errlen)
{
	char **urls;
	size_t n = cfg_list_split(list, &urls);
	proto_err pe = PROTO_OK;

	if (n == 0) {
		snprintf(err, errlen, "no URL in \"%s\"", what);
		pe = PROTO_EINVAL;
	}
	for (size_t i = 0; i < n && pe == PROTO_OK; i++)
		pe = dial_one(sock, urls[i], what, o, err, errlen);
	cfg_list_free(urls, n);
	return pe;
}

/* probe_io sends or receives exactly len bytes on s, bounded by aio. */
static int
probe_io(nng_stream *s, nng_aio *aio, uint8_t *buf, size_t len, bool send)
{
	while (len > 0) {
		nng_iov iov = {.iov_buf = buf, .iov_len = len};
		size_t n;
		int rv;
		nng_aio_set_iov(aio, 1, &iov);
		(send ? nng_stream_send : nng_stream_recv)(s, aio);
		nng_aio_wait(aio);
		if ((rv = nng_aio_result(aio)) != 0)
			return rv;
		if ((n = nng_aio_count(aio)) == 0)
			return NNG_ECLOSED;
		buf += n;
		len -= n;
	}
	return 0;
}

/*
 * probe_once connects to url (with cfg for TLS) and swaps SP headers, the
 * 8 bytes of the TCP mapping: 0, 'S', 'P', 0, protocol (16 bits), 0, 0.
 * For TLS the first send runs the handshake. Returns 0 when the peer
 * answered with an SP header, NNG_EPROTO when it answered something else,
 * or the failing nng error; *connected says whether TCP connected.
 */
static int
probe_once(const char *url, nng_tls_config *cfg, int proto, int timeout_ms,
    bool *connected)
{
	uint8_t out[8]
	    = {0, 'S', 'P', 0, (uint8_t) (proto >> 8), (uint8_t) proto, 0, 0};
	uint8_t in[8];
	nng_stream_dialer *d = NULL;
	nng_stream *s = NULL;
	nng_aio *aio = NULL;
	int rv;

	*connected = false;
	if ((rv = nng_stream_dialer_alloc(&d, url)) != 0
	    || (cfg != NULL
	        && (rv = nng_stream_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg))
	            != 0)
	    || (rv = nng_aio_alloc(&aio, NULL, NULL)) != 0)
		goto done;
	nng_aio_set_timeout(aio, (nng_duration) timeout_ms);
	nng_stream_dialer_dial(d, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0)
		goto done;
	*connected = true;
	s = nng_aio_get_output(aio, 0);
	if ((rv = probe_io(s, aio, out, sizeof out, true)) == 0
	    && (rv = probe_io(s, aio, in, sizeof in, false)) == 0)
		rv = in[0] == 0 && in[1] == 'S' && in[2] == 'P' && in[3] == 0
		    ? 0
		    : NNG_EPROTO;
done:
	if (s != NULL) {
		nng_stream_close(s);
		nng_stream_free(s);
	}
	if (d != NULL) {
		nng_stream_dialer_close(d);
		nng_stream_dialer_free(d);
	}
	nng_aio_free(aio);
	return rv;
}

/* probe_with probes url with a client configuration built as asked. */
static int
probe_with(const char *url, const tls_opts *o, nng_tls_auth_mode auth,
    bool with_name, int proto, int timeout_ms)
{
	nng_tls_config *cfg;
	char err[300];
	bool connected;
	int rv;

	if (client_config(
	        url, o, auth, with_name, false, &cfg, err, sizeof err)
	    != PROTO_OK)
		return NNG_EINVAL;
	rv = probe_once(url, cfg, proto, timeout_ms, &connected);
	nng_tls_config_free(cfg);
	return rv;
}

/*
 * refused_cert: unverified and without our certificate, the handshake
 * gets further (done, or closed by a hub that wants a certificate) than
 * with it: the hub refused the certificate.
 */
static bool
refused_cert(const char *url, const tls_opts *o, int proto, int timeout_ms)
{
	tls_opts bare = *o;

	bare.cert = bare.key = NULL;
	return probe_with(url, &bare, NNG_TLS_AUTH_MODE_NONE, false, proto,
	           timeout_ms)
	    != NNG_ECRYPTO;
}

/*
 * why_verify: our check of the hub's certificate failed (mbedTLS reports
 * it as a plain crypto error). Without verification, then without the
 * name check, tells whether the CA or the name is wrong.
 */
static void
why_verify(const char *url, const tls_opts *o, int proto, int timeout_ms,
    char *why, size_t whylen)
{
	char host[256] = "";
	const char *name = o->server_name;
	int rv;

	if (name == NULL && url_host(url, host, sizeof host))
		name = host;
	rv = probe_with(
	    url, o, NNG_TLS_AUTH_MODE_NONE, false, proto, timeout_ms);
	if (rv != 0 && o->cert != NULL
	    && refused_cert(url, o, proto, timeout_ms)) {
		snprintf(why, whylen,
		    "TLS handshake with \"%s\" failed (%s): the hub refused "
		    "our client certificate tls_cert \"%s\": check that it is "
		    "signed by the hub's tls_client_ca and still valid",
		    url, nng_strerror(rv), o->cert);
		return;
	}
	if (rv != 0) {
		/* Even unverified it fails: the hub has more to complain of.
		 */
		snprintf(why, whylen,
		    "TLS handshake with \"%s\" failed (%s): the hub's "
		    "certificate could not be verified with %s \"%s\" or does "
		    "not name \"%s\"%s",
		    url, nng_strerror(NNG_ECRYPTO), o->ca_key, o->ca, name,
		    rv == NNG_ECRYPTO ? ", or the hub does not speak TLS there"
		        : o->cert == NULL
		        ? "; the hub also requires a client certificate: set "
		          "tls_cert and tls_key"
		        : "");
		return;
	}
	if (probe_with(
	        url, o, NNG_TLS_AUTH_MODE_REQUIRED, false, proto, timeout_ms)
	    != 0)
		snprintf(why, whylen,
		    "TLS handshake with \"%s\" failed: the hub's certificate "
		    "is not signed by a CA in %s \"%s\"",
		    url, o->ca_key, o->ca);
	else
		snprintf(why, whylen,
		    "TLS handshake with \"%s\" failed: the hub's certificate "
		    "is signed by a CA in %s but does not name \"%s\"; set "
		    "tls_server_name to a DNS name it holds (IP addresses are "
		    "not matched)",
		    url, o->ca_key, name);
}

bool
tls_probe(const char *url, const tls_opts *o, int proto, int timeout_ms,
    char *why, size_t whylen)
{
	nng_tls_config *cfg = NULL;
	bool tls = tls_url(url), connected;
	int rv;

	if (tls && tls_client_new(url, o, &cfg, why, whylen) != PROTO_OK)
		return true;
	rv = probe_once(url, cfg, proto, timeout_ms, &connected);
	if (cfg != NULL)
		nng_tls_config_free(cfg);
	if (rv == 0)
		return false;
	if (!connected)
		snprintf(why, whylen, "could not connect to \"%s\": %s", url,
		    nng_strerror(rv));
	else if (rv == NNG_ETIMEDOUT)
		snprintf(why, whylen, "no answer from \"%s\" within %d ms",
		    url, timeout_ms);
	else if (!tls)
		snprintf(why, whylen,
		    "\"%s\" closed the connection without speaking the nng "
		    "protocol (%s): the hub may be listening with TLS; use a "
		    "tls+tcp:// URL and set tls_ca",
		    url, nng_strerror(rv));
	else if (probe_once(url + 4, NULL, proto, timeout_ms, &connected) == 0)
		snprintf(why, whylen,
		    "\"%s\" does not speak TLS: the hub answered on that port "
		    "without it (use tcp://, or set up TLS at the hub)",
		    url);
	else if (rv == NNG_ECRYPTO || rv == NNG_EPEERAUTH)
		why_verify(url, o, proto, timeout_ms, why, whylen);
	else
		snprintf(why, whylen,
		    "the hub closed the TLS handshake with \"%s\" (%s): it "
		    "requires a client certificate signed by its "
		    "tls_client_ca; %s",
		    url, nng_strerror(rv),
		    o->cert ? "check that tls_cert is signed by it"
		            : "set tls_cert and tls_key");
	return true;
}

bool
tls_probe_all(const char *list, const tls_opts *o, int proto, int timeout_ms,
    char *why, size_t whylen)
{
	char **urls, one[600];
	size_t n = cfg_list_split(list, &urls), used = 0;

	why[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (!tls_probe(urls[i], o, proto, timeout_ms, one, sizeof one)
		    || used >= whylen)
			continue;
		used += (size_t) snprintf(why + used, whylen - used, "%s%s",
		    used > 0 ? "; " : "", one);
	}
	cfg_list_free(urls, n);
	return why[0] != '\0';
}
