/*
 * platform.h: everything the daemons need from the operating system that
 * ISO C does not give them: randomness, clocks, stop and reload requests
 * (signals, or console control on Windows), service-manager notification,
 * the Windows service itself, default and absolute file paths, the
 * permission check on secret files, the text of an errno value and when
 * to tear nng down.
 *
 * One implementation per platform, chosen by CMake: platform_posix.c
 * (Linux, any architecture) and platform_win.c (mingw-w64). The
 * interface uses only C types, so that both can implement it; code outside
 * platform_*.c calls plat_* and never #ifdefs on the platform.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef BS_PLATFORM_H
#define BS_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "proto/err.h"

/*
 * Clocks. plat_mono_ms and plat_mono_us count from an arbitrary start and
 * never go back (CLOCK_MONOTONIC); plat_wall_ms is the wall clock in
 * milliseconds since 1970-01-01 UTC and may jump.
 */
int64_t plat_mono_ms(void);
int64_t plat_mono_us(void);
int64_t plat_wall_ms(void);

/*
 * plat_gmtime breaks sec (seconds since 1970-01-01 UTC) into UTC calendar
 * fields in *out (reentrant gmtime).
 */
void plat_gmtime(int64_t sec, struct tm *out);

/*
 * plat_sleep_ms sleeps for ms milliseconds, returning early (within 50 ms)
 * once a stop is requested (plat_stop_requested).
 */
void plat_sleep_ms(int64_t ms);

/*
 * plat_rand_bytes fills p with n bytes from the operating system's CSPRNG.
 * Returns PROTO_EIO if it is unavailable.
 */
proto_err plat_rand_bytes(void *p, size_t n)
    __attribute__((warn_unused_result));
/*
 * plat_rand_u64 returns a random 64-bit number from the CSPRNG; it logs
 * RANDOM-FAIL and aborts if the CSPRNG is unavailable.
 */
uint64_t plat_rand_u64(void);

/*
 * Stop and reload requests. plat_sig_install arranges that a termination
 * request from outside (SIGTERM, SIGINT) makes plat_stop_requested true,
 * and that a second one ends the process at once with status 1; that a
 * reload request (SIGHUP) is remembered for plat_reload_take; and that a
 * peer closing a socket does not kill the process (SIGPIPE is ignored).
 * The requests are only recorded: the daemons' loops poll for them.
 */
void plat_sig_install(void);
/* plat_stop_requested returns true once a stop was requested. */
bool plat_stop_requested(void);
/* plat_stop_request requests a stop from inside the process. */
void plat_stop_request(void);
/*
 * plat_reload_take returns true if a reload was requested since the last
 * call, and forgets the request.
 */
bool plat_reload_take(void);

/*
 * plat_notify sends a state message ("READY=1", "STOPPING=1", ...) to the
 * service manager (systemd's NOTIFY_SOCKET); it does nothing if there is
 * none. Errors are ignored.
 */
void plat_notify(const char *msg);

/*
 * Windows services. plat_service_run runs fn(arg) as the service called
 * name, under the Service Control Manager: a stop or shutdown from the SCM
 * requests a stop (plat_stop_requested), READY=1 and STOPPING=1 (see
 * plat_notify) set the service's state, and fn's return value becomes the
 * exit code. It returns fn's result, or -1 with the reason in err when the
 * process was not started by the SCM.
 *
 * plat_service_install registers this program as an automatic service
 * name that runs with the command-line arguments args; if name exists
 * already, its command line, display name and description are updated
 * instead (an upgrade). It also creates the default folder (see
 * plat_default_path), where a service keeps its log file by default.
 * plat_service_uninstall stops it (waiting up to
 * 30 s) and removes it. Both need Administrator rights. On POSIX all
 * three only fail with a message in err: systemd starts the daemons there.
 */
int plat_service_run(
    const char *name, int (*fn)(void *), void *arg, char *err, size_t errlen);
proto_err plat_service_install(const char *name, const char *display,
    const char *description, const char *args, char *err, size_t errlen);
proto_err plat_service_uninstall(const char *name, char *err, size_t errlen);

/*
 * plat_default_path returns where file lives by default: under
 * /etc/branchsync on POSIX, under %ProgramData%\branchsync on Windows.
 * The string is borrowed and overwritten by the next call.
 */
const char *plat_default_path(const char *file);

/*
 * plat_absolute_path writes path made absolute against the current
 * directory into out (outlen bytes), without resolving links; the file
 * need not exist. Returns false if it does not fit or the current
 * directory is unknown.
 */
bool plat_absolute_path(const char *path, char *out, size_t outlen)
    __attribute__((warn_unused_result));

/*
 * plat_nng_fini tears nng down (nng_fini) at the end of a daemon, once
 * every socket is closed: on POSIX, so that the leak checker finds nothing
 * of nng's left at exit. On Windows it does nothing: the exit ends nng's
 * threads just as well, and nng_fini waits for its I/O threads to see
 * their completion port closed, which wine (8.0) never shows them, so
 * that the agent would hang there under wine.
 */
void plat_nng_fini(void);

/*
 * plat_file_exposed checks whether users other than the owner of the file
 * at path may read it (on Windows: accounts other than the owner, SYSTEM
 * and Administrators, by the file's access control list). If so it writes how,
 * and how to fix it, into how (e.g. 'readable by its group (mode 0640); run
 * "chmod 600 PATH"', to follow "... but is ") and returns true. A file that
 * cannot be examined returns false: it is left to whoever opens it.
 */
bool plat_file_exposed(const char *path, char *how, size_t howlen);

/*
 * plat_strerror returns the text for the errno value errnum, the text
 * glibc's printf prints for its m conversion. The string is borrowed; it
 * stays valid until the next call in the same thread.
 */
const char *plat_strerror(int errnum);

#endif /* BS_PLATFORM_H */
