/* The terminal progress view of canaryctl's waits and watches (`rollout start --wait`, `rollout wait`,
 * `rollout status --watch`): a rollout's status as one plain line, the live line that says what it waits for, and
 * the terminal's redraws. The shells fetch the rows; this only formats them. */
#ifndef CANARY_REPORT_TERM_H
#define CANARY_REPORT_TERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct cn_rollout_status;
struct cn_rollout_row;
struct cn_policy;

/* The SLO verdicts of the last tick: "p99-latency pass, error-rate pass" ("" when none). Writes buf. */
void cn_term_verdicts(const struct cn_rollout_status *st, char *buf, size_t size);

/* Prints st as one plain line with a newline on f: "rollout 3 chat: progressing, step 2/3, candidate v2 at 5%
 * [error-rate pass] — reason". */
void cn_term_print_status(FILE *f, const struct cn_rollout_status *st);

/* The compact live line: "rollout 3 chat v2: progressing, step 2/3, 5% [error-rate pass], hold 4s left". row and
 * policy (each may be NULL: the line says less) add what the rollout waits for: the hold's time left, or a person
 * and the approval's deadline. now is the wall clock in ms since 1970-01-01 UTC. Writes buf. */
void cn_term_live_line(const struct cn_rollout_status *st, const struct cn_rollout_row *row,
		       const struct cn_policy *policy, int64_t now, char *buf, size_t size);

/* Prints one rollout in full on f (`rollout status ID`): the plain line, what it waits for (when row is not NULL
 * and there is something to say) and one line per SLO with its verdict and why. now as for cn_term_live_line. */
void cn_term_print_rollout(FILE *f, const struct cn_rollout_status *st, const struct cn_rollout_row *row,
			   const struct cn_policy *policy, int64_t now);

/* Starts a frame of the watch on f: on a terminal (tty) clears the screen first; then the header line
 * "12:00:05  2 active rollouts (every 1s; Ctrl-C to stop)" with now (ms since 1970-01-01 UTC) in local time. */
void cn_term_watch_header(FILE *f, bool tty, int64_t now, size_t active, int every_s);

/* Prints line with a newline on f, cut to the terminal's width on a terminal (tty). */
void cn_term_print_line(FILE *f, bool tty, const char *line);

/* Redraws the terminal's current line on f: carriage return, clear to the end, line cut to the terminal's width;
 * then flushes f. */
void cn_term_redraw(FILE *f, const char *line);

/* Clears the terminal's current line on f (carriage return, clear to the end), where the live line was. */
void cn_term_clear_line(FILE *f);

#endif
