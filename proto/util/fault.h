/*
 * fault.h: named fault-injection sites, for tests (as SQLite's
 * sqlite3FaultSim).
 *
 * A site marks a point where a crash is worth testing because the
 * invariants hinge on it, e.g. the hub between its COMMIT and the ACK it
 * sends. Sites exist only in a build with -DWITH_FAULTS (cmake
 * -DBS_FAULTS=ON); elsewhere fault_hit() is nothing at all.
 *
 * In such a build, the environment variable
 *
 *   BS_FAULT=<site name>:<n>
 *
 * arms one site: its nth hit (1 if ":<n>" is left out) ends the process
 * at once with _Exit(FAULT_EXIT_CODE), as a kill -9 there would: no
 * cleanup, no flush, no COMMIT or ACK that was not done yet. Other sites
 * and other processes run on.
 *
 * Site numbers are never reused; a removed site leaves a gap. Names are
 * what BS_FAULT and the tests use.
 */
#ifndef BS_FAULT_H
#define BS_FAULT_H

#include <stdbool.h>

/* The exit status of a process ended by a fault site. */
#define FAULT_EXIT_CODE 86

typedef enum {
	/* hub: a PUSH is committed in PostgreSQL, its ACK not sent yet */
	FAULT_HUB_AFTER_COMMIT = 1,
	/* agent: an ACK arrived, the POS file does not record it yet */
	FAULT_AGENT_AFTER_ACK = 2,
	/* agent: a page of master data is read, not applied yet */
	FAULT_AGENT_BEFORE_CHANGES_APPLY = 3,
	FAULT_SITE_END /* one past the last site */
} fault_site;

/* fault_site_name returns a site's name ("hub_after_commit"), or "?". */
const char *fault_site_name(fault_site site);

/* fault_enabled says whether this build has fault sites. */
bool fault_enabled(void);

#ifdef WITH_FAULTS
/* fault_hit counts a hit of site and ends the process if BS_FAULT says. */
void fault_hit(fault_site site);
#else
#define fault_hit(site) ((void) 0)
#endif

#endif /* BS_FAULT_H */
