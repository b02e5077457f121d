/*
 * platform_win.c: platform.h for Windows (mingw-w64, x86-64): the
 * performance counter, BCryptGenRandom, console control events, the
 * Service Control Manager and the file's access control list.
 *
 * Only the agent is built for Windows.
 */
#include "platform.h"

#include <windows.h>

#include <aclapi.h>
#include <bcrypt.h>
#include <sddl.h>
#include <shlobj.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Set by the console handler, the service handler or plat_stop_request. */
static volatile LONG got_term;

/* The service's status handle while running under the SCM, else NULL. */
static SERVICE_STATUS_HANDLE svc_handle;
static SERVICE_STATUS svc_status;
static CRITICAL_SECTION svc_lock;

int64_t
plat_mono_us(void)
{
	static LARGE_INTEGER freq;
	LARGE_INTEGER now;

	if (freq.QuadPart == 0)
		QueryPerformanceFrequency(&freq);
	QueryPerformanceCounter(&now);
	/* split to keep the product in range for any counter frequency */
	return (int64_t) (now.QuadPart / freq.QuadPart) * 1000000
	    + (int64_t) (now.QuadPart % freq.QuadPart) * 1000000
	    / freq.QuadPart;
}

int64_t
plat_mono_ms(void)
{
	return plat_mono_us() / 1000;
}

int64_t
plat_wall_ms(void)
{
	FILETIME ft;
	ULARGE_INTEGER t;

	GetSystemTimePreciseAsFileTime(&ft);
	t.LowPart = ft.dwLowDateTime;
	t.HighPart = ft.dwHighDateTime;
	/* 100 ns units since 1601-01-01 */
	return (int64_t) (t.QuadPart / 10000) - INT64_C(11644473600000);
}

void
plat_gmtime(int64_t sec, struct tm *out)
{
	__time64_t t = (__time64_t) sec;

	if (_gmtime64_s(out, &t) != 0)
		memset(out, 0, sizeof *out);
}

void
plat_sleep_ms(int64_t ms)
{
	int64_t end = plat_mono_ms() + ms;

	while (!got_term) {
		int64_t left = end - plat_mono_ms();
		if (left <= 0)
			break;
		Sleep((DWORD) (left > 50 ? 50 : left));
	}
}

proto_err
plat_rand_bytes(void *p, size_t n)
{
	uint8_t *b = p;

	while (n > 0) {
		ULONG chunk = n > 1u << 20 ? 1u << 20 : (ULONG) n;
		if (!BCRYPT_SUCCESS(BCryptGenRandom(
		        NULL, b, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
			return PROTO_EIO;
		b += chunk;
		n -= chunk;
	}
	return PROTO_OK;
}

uint64_t
plat_rand_u64(void)
{
	uint64_t v;

	if (plat_rand_bytes(&v, sizeof v) != PROTO_OK) {
		log_error("RANDOM-FAIL", "could not read random bytes");
		abort();
	}
	return v;
}

/*
 * Console control: Ctrl+C, Ctrl+Break, closing the console window, logoff
 * and shutdown request a stop (in a service, only the first three); a
 * second one ends the process at once.
 * Windows runs the handler on a thread of its own, and ends the process
 * when the handler returns from CTRL_CLOSE_EVENT and later ones, so those
 * wait for the stop here (Windows allows about 5 s).
 */
static BOOL WINAPI
on_console(DWORD ev)
{
	/*
	 * A service hears here of every user's logoff, and of a shutdown
	 * that the SCM also announces (on_service_control): neither is a
	 * stop request.
	 */
	if (svc_handle != NULL
	    && (ev == CTRL_LOGOFF_EVENT || ev == CTRL_SHUTDOWN_EVENT))
		return TRUE;
	if (InterlockedExchange(&got_term, 1))
		ExitProcess(1);
	if (ev == CTRL_CLOSE_EVENT || ev == CTRL_LOGOFF_EVENT
	    || ev == CTRL_SHUTDOWN_EVENT)
		Sleep(4000);
	return TRUE;
}

void
plat_sig_install(void)
{
	SetConsoleCtrlHandler(on_console, TRUE);
}

bool
plat_stop_requested(void)
{
	return InterlockedCompareExchange(&got_term, 0, 0) != 0;
}

void
plat_stop_request(void)
{
	InterlockedExchange(&got_term, 1);
}

bool
plat_reload_take(void)
{
	return false; /* Windows has no reload request (no SIGHUP) */
}

/* svc_report sets the service's state, under the lock. */
static void
svc_report(DWORD state, DWORD exit_code, DWORD wait_ms)
{
	if (svc_handle == NULL)
		return;
	EnterCriticalSection(&svc_lock);
	svc_status.dwCurrentState = state;
	svc_status.dwWin32ExitCode = exit_code;
	svc_status.dwWaitHint = wait_ms;
	svc_status.dwControlsAccepted = state == SERVICE_RUNNING
	    ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN
	    : 0;
	if (state == SERVICE_START_PENDING || state == SERVICE_STOP_PENDING)
		svc_status.dwCheckPoint++;
	else
		svc_status.dwCheckPoint = 0;
	SetServiceStatus(svc_handle, &svc_status);
	LeaveCriticalSection(&svc_lock);
}

void
plat_notify(const char *msg)
{
	if (!strcmp(msg, "READY=1"))
		svc_report(SERVICE_RUNNING, NO_ERROR, 0);
	else if (!strcmp(msg, "STOPPING=1"))
		svc_report(SERVICE_STOP_PENDING, NO_ERROR, 30000);
}

/* --- the Service Control Manager ---------------------------------------- */

static int (*svc_fn)(void *);
static void *svc_arg;
static const char *svc_name;
static int svc_rc;

static DWORD WINAPI
on_service_control(DWORD ctl, DWORD type, LPVOID data, LPVOID ctx)
{
	(void) type, (void) data, (void) ctx;
	switch (ctl) {
	case SERVICE_CONTROL_STOP:
	case SERVICE_CONTROL_SHUTDOWN:
		/* the loops see it and stop as on SIGTERM */
		svc_report(SERVICE_STOP_PENDING, NO_ERROR, 30000);
		plat_stop_request();
		return NO_ERROR;
	case SERVICE_CONTROL_INTERROGATE:
		return NO_ERROR;
	default:
		return ERROR_CALL_NOT_IMPLEMENTED;
	}
}

static void WINAPI
service_main(DWORD argc, LPSTR *argv)
{
	(void) argc, (void) argv;
	svc_handle = RegisterServiceCtrlHandlerExA(
	    svc_name, on_service_control, NULL);
	if (svc_handle == NULL) {
		svc_rc = 1;
		return;
	}
	svc_status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
	svc_report(SERVICE_START_PENDING, NO_ERROR, 30000);
	svc_rc = svc_fn(svc_arg);
	svc_status.dwServiceSpecificExitCode = (DWORD) svc_rc;
	svc_report(SERVICE_STOPPED,
	    svc_rc == 0 ? NO_ERROR : ERROR_SERVICE_SPECIFIC_ERROR, 0);
}

/* win_error writes what Windows error code e means after what. */
static void
win_error(DWORD e, const char *what, char *err, size_t errlen)
{
	char text[256] = "";
	size_t n;

	FormatMessageA(
	    FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL,
	    e, 0, text, sizeof text, NULL);
	n = strlen(text);
	while (n > 0
	    && (text[n - 1] == '\n' || text[n - 1] == '\r'
	        || text[n - 1] == '.'))
		text[--n] = '\0';
	snprintf(err, errlen, "%s: %s (error %lu)", what,
	    n ? text : "unknown error", (unsigned long) e);
}

int
plat_service_run(
    const char *name, int (*fn)(void *), void *arg, char *err, size_t errlen)
{
	SERVICE_TABLE_ENTRYA table[] = {
	    {(LPSTR) name, service_main},
	    {NULL, NULL},
	};

	InitializeCriticalSection(&svc_lock);
	svc_name = name;
	svc_fn = fn;
	svc_arg = arg;
	if (!StartServiceCtrlDispatcherA(table)) {
		win_error(GetLastError(),
		    "could not connect to the Service Control Manager (is "
		    "this started as a service?)",
		    err, errlen);
		return -1;
	}
	return svc_rc;
}

/*
 * svc_update points the existing service name at cmd (an upgrade or a new
 * configuration file); its start type and account stay as they are.
 * Returns its handle, or NULL with the error in GetLastError.
 */
static SC_HANDLE
svc_update(
    SC_HANDLE scm, const char *name, const char *display, const char *cmd)
{
	SC_HANDLE svc = OpenServiceA(scm, name, SERVICE_ALL_ACCESS);
	DWORD e;

	if (svc == NULL)
		return NULL;
	if (!ChangeServiceConfigA(svc, SERVICE_NO_CHANGE, SERVICE_NO_CHANGE,
	        SERVICE_NO_CHANGE, cmd, NULL, NULL, NULL, NULL, NULL,
	        display)) {
		e = GetLastError();
		CloseServiceHandle(svc);
		SetLastError(e);
		return NULL;
	}
	return svc;
}

/* default_dir_create makes the folder of plat_default_path if missing. */
static proto_err
default_dir_create(char *err, size_t errlen)
{
	char dir[MAX_PATH], what[MAX_PATH + 40];
	size_t n;
	DWORD e;

	snprintf(dir, sizeof dir, "%s", plat_default_path(""));
	n = strlen(dir);
	if (n > 0 && dir[n - 1] == '\\')
		dir[n - 1] = '\0';
	if (CreateDirectoryA(dir, NULL)
	    || (e = GetLastError()) == ERROR_ALREADY_EXISTS)
		return PROTO_OK;
	snprintf(what, sizeof what, "could not create folder \"%s\"", dir);
	win_error(e, what, err, errlen);
	return PROTO_EIO;
}

proto_err
plat_service_install(const char *name, const char *display,
    const char *description, const char *args, char *err, size_t errlen)
{
	char exe[MAX_PATH], cmd[MAX_PATH * 3];
	SC_HANDLE scm, svc;
	SERVICE_DESCRIPTIONA desc = {(LPSTR) description};
	DWORD n = GetModuleFileNameA(NULL, exe, sizeof exe);

	if (n == 0 || n >= sizeof exe) {
		win_error(GetLastError(), "could not find the program's path",
		    err, errlen);
		return PROTO_EIO;
	}
	if ((size_t) snprintf(cmd, sizeof cmd, "\"%s\" %s", exe, args)
	    >= sizeof cmd) {
		snprintf(
		    err, errlen, "the service's command line is too long");
		return PROTO_EINVAL;
	}
	if ((scm = OpenSCManagerA(NULL, NULL, SC_MANAGER_CREATE_SERVICE))
	    == NULL) {
		win_error(GetLastError(),
		    "could not open the Service Control Manager (run as "
		    "Administrator)",
		    err, errlen);
		return PROTO_EIO;
	}
	svc = CreateServiceA(scm, name, display, SERVICE_ALL_ACCESS,
	    SERVICE_WIN32_OWN_PROCESS, SERVICE_AUTO_START,
	    SERVICE_ERROR_NORMAL, cmd, NULL, NULL, NULL, NULL, NULL);
	if (svc == NULL && GetLastError() == ERROR_SERVICE_EXISTS)
		svc = svc_update(scm, name, display, cmd);
	if (svc == NULL) {
		win_error(GetLastError(), "could not create the service", err,
		    errlen);
		CloseServiceHandle(scm);
		return PROTO_EIO;
	}
	ChangeServiceConfig2A(svc, SERVICE_CONFIG_DESCRIPTION, &desc);
	CloseServiceHandle(svc);
	CloseServiceHandle(scm);
	return default_dir_create(err, errlen);
}

proto_err
plat_service_uninstall(const char *name, char *err, size_t errlen)
{
	SC_HANDLE scm, svc;
	SERVICE_STATUS st;
	proto_err rv = PROTO_OK;

	if ((scm = OpenSCManagerA(NULL, NULL, SC_MANAGER_CONNECT)) == NULL) {
		win_error(GetLastError(),
		    "could not open the Service Control Manager (run as "
		    "Administrator)",
		    err, errlen);
		return PROTO_EIO;
	}
	svc = OpenServiceA(
	    scm, name, SERVICE_STOP | SERVICE_QUERY_STATUS | DELETE);
	if (svc == NULL) {
		win_error(
		    GetLastError(), "could not open the service", err, errlen);
		CloseServiceHandle(scm);
		return PROTO_EIO;
	}
	/* Stop it first, and give the batch in flight time to finish. */
	if (ControlService(svc, SERVICE_CONTROL_STOP, &st)) {
		for (int i = 0;
		     i < 300 && st.dwCurrentState != SERVICE_STOPPED; i++) {
			Sleep(100);
			if (!QueryServiceStatus(svc, &st))
				break;
		}
	}
	if (!DeleteService(svc)) {
		win_error(GetLastError(), "could not delete the service", err,
		    errlen);
		rv = PROTO_EIO;
	}
	CloseServiceHandle(svc);
	CloseServiceHandle(scm);
	return rv;
}

/* --- paths and files --------------------------------------------------- */

/*
 * The folder comes from the shell (CSIDL_COMMON_APPDATA, what installers
 * call ProgramData), not from %ProgramData%: a service's environment need
 * not have it (wine gives services C:\users\Public there).
 */
const char *
plat_default_path(const char *file)
{
	static char buf[MAX_PATH];
	char base[MAX_PATH];

	if (SHGetFolderPathA(
	        NULL, CSIDL_COMMON_APPDATA, NULL, SHGFP_TYPE_CURRENT, base)
	    != S_OK)
		snprintf(base, sizeof base, "C:\\ProgramData");
	snprintf(buf, sizeof buf, "%s\\branchsync\\%s", base, file);
	return buf;
}

void
plat_nng_fini(void)
{
	/* see platform.h: process exit ends nng's threads */
}

bool
plat_absolute_path(const char *path, char *out, size_t outlen)
{
	DWORD n = GetFullPathNameA(path, (DWORD) outlen, out, NULL);

	return n > 0 && n < outlen;
}

/*
 * sid_trusted: SIDs that may read a secret: the file's owner, SYSTEM and
 * the Administrators group.
 */
static bool
sid_trusted(PSID sid, PSID owner)
{
	BYTE buf[SECURITY_MAX_SID_SIZE];
	DWORD n;

	if (owner != NULL && EqualSid(sid, owner))
		return true;
	n = sizeof buf;
	if (CreateWellKnownSid(WinLocalSystemSid, NULL, buf, &n)
	    && EqualSid(sid, buf))
		return true;
	n = sizeof buf;
	if (CreateWellKnownSid(WinBuiltinAdministratorsSid, NULL, buf, &n)
	    && EqualSid(sid, buf))
		return true;
	return false;
}

/* sid_name writes DOMAIN\name of sid (or its S-1-... form) into out. */
static void
sid_name(PSID sid, char *out, size_t outlen)
{
	char name[256], dom[256];
	DWORD nn = sizeof name, dn = sizeof dom;
	SID_NAME_USE use;
	LPSTR str = NULL;

	if (LookupAccountSidA(NULL, sid, name, &nn, dom, &dn, &use))
		snprintf(out, outlen, "%s%s%s", dom, dom[0] ? "\\" : "", name);
	else if (ConvertSidToStringSidA(sid, &str)) {
		snprintf(out, outlen, "%s", str);
		LocalFree(str);
	} else
		snprintf(out, outlen, "an unknown account");
}

bool
plat_file_exposed(const char *path, char *how, size_t howlen)
{
	PSECURITY_DESCRIPTOR sd = NULL;
	PSID owner = NULL;
	PACL dacl = NULL;
	char who[600];
	bool exposed = false;
	const DWORD read_bits = FILE_READ_DATA | GENERIC_READ | GENERIC_ALL;

	if (GetNamedSecurityInfoA(path, SE_FILE_OBJECT,
	        OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &owner,
	        NULL, &dacl, NULL, &sd)
	    != ERROR_SUCCESS)
		return false;
	if (dacl == NULL) {
		snprintf(how, howlen,
		    "readable by everyone (no access control list); run "
		    "\"icacls \"%s\" /inheritance:r /grant:r "
		    "SYSTEM:F Administrators:F %%USERNAME%%:F\"",
		    path);
		exposed = true;
		goto done;
	}
	for (DWORD i = 0; i < dacl->AceCount && !exposed; i++) {
		ACE_HEADER *h;
		ACCESS_ALLOWED_ACE *a;
		if (!GetAce(dacl, i, (void **) &h)
		    || h->AceType != ACCESS_ALLOWED_ACE_TYPE
		    || (h->AceFlags & INHERIT_ONLY_ACE))
			continue;
		a = (ACCESS_ALLOWED_ACE *) h;
		if (!(a->Mask & read_bits)
		    || sid_trusted((PSID) &a->SidStart, owner))
			continue;
		sid_name((PSID) &a->SidStart, who, sizeof who);
		snprintf(how, howlen,
		    "readable by %s; run \"icacls \"%s\" /inheritance:r "
		    "/grant:r SYSTEM:F Administrators:F %%USERNAME%%:F\"",
		    who, path);
		exposed = true;
	}
done:
	LocalFree(sd);
	return exposed;
}

const char *
plat_strerror(int errnum)
{
	/* the CRT's strerror keeps its text per thread */
	return strerror(errnum);
}
