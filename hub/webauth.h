/*
 * webauth.h: Basic authentication of the operator listener against a file
 * of password hashes, as Prometheus exporters' web configuration does.
 *
 * The file (http_users_file) holds one "user:hash" per line; '#' starts a
 * comment line. A hash is any crypt(3) hash libcrypt verifies except the
 * weak legacy ones: yescrypt ("mkpasswd -m yescrypt"), bcrypt
 * ("mkpasswd -m bcrypt", "htpasswd -nbB") or SHA-512 ("openssl passwd -6").
 * Checking a password costs what the hash was made to cost (tens of
 * milliseconds), so credentials that passed are remembered, as a SHA-256
 * of the header, for a minute: a page polling every 5 s costs one check a
 * minute.
 */
#ifndef BS_HUB_WEBAUTH_H
#define BS_HUB_WEBAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/err.h"

typedef struct webauth webauth;

/*
 * webauth_load reads the users file at path. PROTO_EINVAL with
 * "PATH:LINE: reason (http_users_file)" in err for a file that cannot be
 * read, has no user, or holds a line that is not "user:hash" with a hash
 * libcrypt accepts. Warns (HUB-HTTP-USERS-PERMS) when others may read it.
 */
proto_err webauth_load(
    const char *path, webauth **out, char *err, size_t errlen);

/*
 * webauth_check tells whether an Authorization header value
 * ("Basic base64(user:password)") names a user of the file with its
 * password. NULL (no header) is false. Thread-safe.
 */
bool webauth_check(webauth *w, const char *authorization);

void webauth_free(webauth *w);

#endif /* BS_HUB_WEBAUTH_H */
