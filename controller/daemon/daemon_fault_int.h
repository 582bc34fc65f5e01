/* Fault injection for tests: CANARY_TEST_CRASH_AT=POINT[:NTH] makes canaryd kill itself with SIGKILL the NTH time
 * (default the first) it reaches the named point of a turn. Unset, a point costs one test of a flag. */
#ifndef CANARY_DAEMON_FAULT_INT_H
#define CANARY_DAEMON_FAULT_INT_H

#include <stdbool.h>

/* Points (README "Crash safety"): after_claim, after_intent, after_gateway, before_confirm, mid_record, command. */

extern bool fault_armed; /* set once by fault_init() when CANARY_TEST_CRASH_AT names a point */

/* Reads CANARY_TEST_CRASH_AT; returns 0, or -1 with a message on stderr when it is malformed (the daemon then
 * refuses to start: a crash test that silently never crashes would pass for the wrong reason). */
int fault_init(void);

/* Counts a pass through point `name` and kills the process when it is the armed point's NTH pass. For mid_record
 * the kill is deferred into the record's own transaction: see fault.c. */
void fault_point(const char *name);

#define CN_CRASH_POINT(name)                                                                                          \
	do {                                                                                                          \
		if (fault_armed)                                                                                      \
			fault_point(name);                                                                            \
	} while (0)

#endif
