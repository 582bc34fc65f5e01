/* canaryd's failover drills (drill.c): one round per claim, leases of their own, state in memory per drill. */
#ifndef CANARY_DAEMON_DRILL_INT_H
#define CANARY_DAEMON_DRILL_INT_H

struct daemon;

/* Starts the drills services schedule when due (at most every few seconds), claims due drills and runs one turn of
 * each. Returns how many turns it ran, or -code when the claim failed (logged). */
int daemon_drills_round(struct daemon *d);

/* Gives back this daemon's drill leases (SIGTERM), so the next daemon takes them over at once. */
void daemon_drills_release(struct daemon *d);

/* Frees the drills' contexts; safe when none. */
void daemon_drills_free(struct daemon *d);

#endif
