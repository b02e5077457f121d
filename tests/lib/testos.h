/*
 * testos.h: the few things the C tests need from the operating system,
 * and the only platform #ifdefs of the tests.
 */
#ifndef BS_TESTOS_H
#define BS_TESTOS_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <windows.h>

#include <aclapi.h>
#include <direct.h>
#include <io.h>
#else
#include <sys/stat.h>
#include <unistd.h>
#endif

/* test_mkdtemp makes a fresh directory <tmp>/<prog>XXXXXX into dir. */
static inline bool
test_mkdtemp(char *dir, size_t len, const char *prog)
{
#ifdef _WIN32
	const char *tmp = getenv("TEMP");
	snprintf(dir, len, "%s\\%sXXXXXX", tmp ? tmp : ".", prog);
	return _mktemp_s(dir, strlen(dir) + 1) == 0 && _mkdir(dir) == 0;
#else
	snprintf(dir, len, "/tmp/%sXXXXXX", prog);
	return mkdtemp(dir) != NULL;
#endif
}

/*
 * test_share lets others read path: 0 the owner only, 1 also a group
 * (POSIX: mode 0640; Windows: the Users group), 2 everyone (0604;
 * Everyone). Windows keeps SYSTEM and Administrators in every case.
 * Returns 1 when done, 0 on an error, and -1 when the file system does not
 * keep access control lists (wine derives them from the Unix mode bits).
 */
static inline int
test_share(const char *path, int who)
{
#ifdef _WIN32
	static const WELL_KNOWN_SID_TYPE kinds[] = {WinLocalSystemSid,
	    WinBuiltinAdministratorsSid, WinBuiltinUsersSid, WinWorldSid};
	EXPLICIT_ACCESS_A ea[4];
	BYTE sids[4][SECURITY_MAX_SID_SIZE];
	PACL acl = NULL;
	DWORD n, rc;
	int m = who == 0 ? 2 : 3;

	memset(ea, 0, sizeof ea);
	for (int i = 0; i < m; i++) {
		int k = i < 2 ? i : (who == 1 ? 2 : 3);
		n = sizeof sids[i];
		if (!CreateWellKnownSid(kinds[k], NULL, sids[i], &n))
			return false;
		ea[i].grfAccessPermissions
		    = i < 2 ? GENERIC_ALL : GENERIC_READ;
		ea[i].grfAccessMode = SET_ACCESS;
		ea[i].Trustee.TrusteeForm = TRUSTEE_IS_SID;
		ea[i].Trustee.ptstrName = (LPSTR) sids[i];
	}
	if (SetEntriesInAclA((ULONG) m, ea, NULL, &acl) != ERROR_SUCCESS)
		return false;
	rc = SetNamedSecurityInfoA((LPSTR) path, SE_FILE_OBJECT,
	    DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
	    NULL, NULL, acl, NULL);
	LocalFree(acl);
	if (rc != ERROR_SUCCESS)
		return 0;
	{
		PSECURITY_DESCRIPTOR sd = NULL;
		PACL got = NULL;
		ACCESS_ALLOWED_ACE *a;
		int kept = GetNamedSecurityInfoA(path, SE_FILE_OBJECT,
		               DACL_SECURITY_INFORMATION, NULL, NULL, &got,
		               NULL, &sd)
		        == ERROR_SUCCESS
		    && got != NULL && got->AceCount == (WORD) m;
		/* each ACE as set, in order */
		for (int i = 0; kept && i < m; i++)
			kept = GetAce(got, (DWORD) i, (void **) &a)
			    && EqualSid((PSID) &a->SidStart, sids[i]);
		LocalFree(sd);
		return kept ? 1 : -1;
	}
#else
	return chmod(path,
	           who == 0       ? 0600
	               : who == 1 ? 0640
	                          : 0604)
	        == 0
	    ? 1
	    : 0;
#endif
}

/* test_memmem finds the n bytes of needle in the len bytes of hay. */
static inline const void *
test_memmem(const void *hay, size_t len, const void *needle, size_t n)
{
	const char *h = hay;

	for (size_t i = 0; n <= len && i <= len - n; i++)
		if (memcmp(h + i, needle, n) == 0)
			return h + i;
	return NULL;
}

#endif /* BS_TESTOS_H */
