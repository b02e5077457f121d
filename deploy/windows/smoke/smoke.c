/* smoke.c: the Windows libraries from build-deps.sh link and work: an
 * in-memory SQLite database, an nng req socket dialing TLS-capable nng,
 * a msgpack round trip, a JSON value, and (when built) an ini parse.
 * Prints "smoke: ok" and exits 0 when all of them work. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <sqlite3.h>
#ifdef HAVE_INIH
#include <ini.h>
#endif

static int fail(const char *what, const char *why)
{
	fprintf(stderr, "smoke: %s: %s\n", what, why);
	return 1;
}

#ifdef HAVE_INIH
static int on_ini(void *user, const char *section, const char *name,
		  const char *value)
{
	if (strcmp(section, "hub") == 0 && strcmp(name, "url") == 0)
		*(int *)user = 1;
	return 1;
}
#endif

int main(void)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	if (sqlite3_open(":memory:", &db) != SQLITE_OK)
		return fail("sqlite3_open", sqlite3_errmsg(db));
	if (sqlite3_prepare_v2(db, "SELECT sqlite_version(), 6*7", -1, &st,
			       NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 1) != 42)
		return fail("sqlite3", sqlite3_errmsg(db));
	printf("smoke: sqlite %s threadsafe=%d\n",
	       (const char *)sqlite3_column_text(st, 0), sqlite3_threadsafe());
	sqlite3_finalize(st);
	sqlite3_close(db);

	nng_socket s;
	int rv;
	if ((rv = nng_req0_open(&s)) != 0)
		return fail("nng_req0_open", nng_strerror(rv));
	nng_tls_config *tls;
	if ((rv = nng_tls_config_alloc(&tls, NNG_TLS_MODE_CLIENT)) != 0)
		return fail("nng_tls_config_alloc", nng_strerror(rv));
	nng_tls_config_free(tls);
	/* nothing listens there: the dialer keeps retrying in the background */
	if ((rv = nng_dial(s, "tcp://127.0.0.1:9", NULL, NNG_FLAG_NONBLOCK)) != 0)
		return fail("nng_dial", nng_strerror(rv));
	printf("smoke: nng %s, req socket, TLS engine %s\n", nng_version(),
	       nng_tls_engine_name());
	nng_close(s);

	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_int(&pk, 42);
	msgpack_pack_str_with_body(&pk, "till", 4);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, sb.data, sb.size, NULL) !=
		    MSGPACK_UNPACK_SUCCESS ||
	    up.data.type != MSGPACK_OBJECT_ARRAY ||
	    up.data.via.array.ptr[0].via.u64 != 42)
		return fail("msgpack", "round trip");
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
	printf("smoke: msgpack %s\n", msgpack_version());

	json_error_t jerr;
	json_t *j = json_loads("{\"branch\": \"B01\"}", 0, &jerr);
	if (!j || strcmp(json_string_value(json_object_get(j, "branch")), "B01"))
		return fail("jansson", jerr.text);
	json_decref(j);
	printf("smoke: jansson %s\n", JANSSON_VERSION);

#ifdef HAVE_INIH
	int found = 0;
	if (ini_parse_string("[hub]\nurl = tls+tcp://hub:5555\n", on_ini,
			     &found) != 0 || !found)
		return fail("inih", "parse");
	printf("smoke: inih\n");
#else
	printf("smoke: inih not in the prefix, skipped\n");
#endif
	printf("smoke: ok\n");
	return 0;
}
