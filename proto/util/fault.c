/* fault.c: the fault sites of a -DWITH_FAULTS build (see fault.h). */
#include "fault.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

static const char *const site_names[FAULT_SITE_END] = {
    [FAULT_HUB_AFTER_COMMIT] = "hub_after_commit",
    [FAULT_AGENT_AFTER_ACK] = "agent_after_ack",
    [FAULT_AGENT_BEFORE_CHANGES_APPLY] = "agent_before_changes_apply",
};

const char *
fault_site_name(fault_site site)
{
	if (site <= 0 || site >= FAULT_SITE_END || site_names[site] == NULL)
		return "?";
	return site_names[site];
}

bool
fault_enabled(void)
{
#ifdef WITH_FAULTS
	return true;
#else
	return false;
#endif
}

#ifdef WITH_FAULTS
/*
 * The armed site and hit number, from BS_FAULT at the first hit of any
 * site: 0 when nothing (or something unknown) is armed.
 */
static atomic_int armed = -1;
static atomic_long at_hit;
static atomic_long hits[FAULT_SITE_END];

static void
arm(void)
{
	const char *env = getenv("BS_FAULT");
	int site = 0;
	long n = 1;

	for (int i = 1; env != NULL && i < FAULT_SITE_END; i++) {
		size_t len = strlen(site_names[i]);
		if (strncmp(env, site_names[i], len) != 0
		    || (env[len] != '\0' && env[len] != ':'))
			continue;
		site = i;
		if (env[len] == ':')
			n = strtol(env + len + 1, NULL, 10);
	}
	if (env != NULL && site == 0)
		log_warn(
		    "FAULT-UNKNOWN", "BS_FAULT=\"%s\" names no site", env);
	atomic_store(&at_hit, n > 0 ? n : 1);
	atomic_store(&armed, site);
}

void
fault_hit(fault_site site)
{
	long n;

	if (atomic_load(&armed) < 0)
		arm();
	if (NEVER(site <= 0 || site >= FAULT_SITE_END)
	    || atomic_load(&armed) != (int) site)
		return;
	n = atomic_fetch_add(&hits[site], 1) + 1;
	if (n != atomic_load(&at_hit))
		return;
	/* One line on stderr (not fully buffered), then gone: no atexit. */
	fprintf(
	    stderr, "FAULT %s hit %ld: exiting\n", fault_site_name(site), n);
	fflush(stderr);
	_Exit(FAULT_EXIT_CODE);
}
#endif
