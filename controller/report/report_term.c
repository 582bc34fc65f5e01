/* The terminal progress view: a rollout's status in one line for people, the live line of the waits and watches
 * (what the rollout waits for, the hold's time left), and the ANSI redraws of a terminal. */
#include "canary/report_term.h"

#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "canary/parse.h"
#include "canary/policy.h"
#include "canary/rollout.h"
#include "canary/store_rollouts.h"

/* A string for the text views: "" where the database has none. */
static const char *E(const char *s)
{
	return s ? s : "";
}

void cn_term_verdicts(const struct cn_rollout_status *st, char *buf, size_t size)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < st->nslos; i++) {
		int n = snprintf(buf + used, size - used, "%s%s %s", i ? ", " : "", E(st->slos[i].slo),
				 E(st->slos[i].verdict));
		if (n < 0 || (size_t)n >= size - used)
			break;
		used += (size_t)n;
	}
}

/* "step 2/3", or "not started" before the first step (the stored step is -1 then). */
static const char *fmt_step(const struct cn_rollout_status *st, char *buf, size_t size)
{
	if (st->step < 0)
		snprintf(buf, size, "not started");
	else
		snprintf(buf, size, "step %d/%d", st->step + 1, st->steps);
	return buf;
}

void cn_term_print_status(FILE *f, const struct cn_rollout_status *st)
{
	char verdicts[512], step[48];
	cn_term_verdicts(st, verdicts, sizeof verdicts);
	fprintf(f, "rollout %lld %s: %s, %s, candidate %s at %.4g%%%s%s%s — %s", (long long)st->id, E(st->service),
		cn_phase_name(st->phase), fmt_step(st, step, sizeof step), E(st->candidate), st->weight,
		verdicts[0] ? " [" : "", verdicts, verdicts[0] ? "]" : "",
		st->reason ? st->reason : "not yet taken up by canaryd");
	/* the operator's words, apart from the controller's: before canaryd has words of its own, and at the end
	 * (not on every progress line of a watch) */
	if (st->start_reason && st->start_reason[0] && (!st->reason || cn_phase_is_terminal(st->phase)))
		fprintf(f, " (started by %s: \"%s\")", E(st->created_by), st->start_reason);
	fputc('\n', f);
}

/* A duration for the live views: whole seconds ("2m05s"), "<1s" below one second. */
static const char *live_duration(int64_t ms, char *buf, size_t size)
{
	if (ms < 1000) {
		snprintf(buf, size, "<1s");
		return buf;
	}
	return cn_format_duration((ms + 500) / 1000 * 1000, buf, size);
}

/* What the rollout waits for, in words: the hold's time left, or a person ("awaiting approval of step 3 since 2m,
 * by someone other than alice; rolls back in 8m without one"). Empty when there is nothing to say. */
static void describe_wait(const struct cn_rollout_row *row, const struct cn_policy *p, int64_t now, char *buf,
			  size_t size)
{
	char d1[32], d2[32];
	buf[0] = '\0';
	if (!row || !row->has_state)
		return;
	const struct cn_rollout_state *s = &row->state;
	switch (row->phase) {
	case CN_PHASE_PROGRESSING:
		if (p && s->step >= 0 && s->step < p->nsteps) {
			int64_t left = p->steps[s->step].hold_ms - (now - s->step_started_ms);
			if (left > 0)
				snprintf(buf, size, "hold %s left", live_duration(left, d1, sizeof d1));
			else
				snprintf(buf, size, "hold done, judging");
		}
		return;
	case CN_PHASE_AWAITING_APPROVAL: {
		int64_t since = s->waiting_since_ms > 0 ? now - s->waiting_since_ms : 0;
		size_t n = (size_t)snprintf(buf, size, "awaiting approval of step %d since %s by %s%s", s->step + 2,
					    live_duration(since, d1, sizeof d1),
					    p && p->approver_must_differ ? "someone other than " : "an operator",
					    p && p->approver_must_differ ? row->created_by : "");
		if (n < size && p && p->approval_timeout_ms > 0) {
			int64_t left = p->approval_timeout_ms - since;
			const char *then = p->on_approval_timeout == CN_FALLBACK_ROLLBACK ? "rolls back"
					   : p->on_approval_timeout == CN_FALLBACK_PAUSE  ? "pauses"
											  : "keeps waiting";
			if (left > 0)
				snprintf(buf + n, size - n, "; %s in %s without one", then,
					 live_duration(left, d2, sizeof d2));
			else
				snprintf(buf + n, size - n, "; overdue, %s", then);
		}
		return;
	}
	case CN_PHASE_PAUSED:
		snprintf(buf, size, "paused (was %s): waits for an operator to resume, abort or promote",
			 cn_phase_name(s->paused_from));
		return;
	default:
		return;
	}
}

void cn_term_live_line(const struct cn_rollout_status *st, const struct cn_rollout_row *row,
		       const struct cn_policy *policy, int64_t now, char *buf, size_t size)
{
	char verdicts[512], wait[256], step[48];
	cn_term_verdicts(st, verdicts, sizeof verdicts);
	describe_wait(row, policy, now, wait, sizeof wait);
	snprintf(buf, size, "rollout %lld %s %s: %s, %s, %.4g%%%s%s%s%s%s", (long long)st->id, E(st->service),
		 E(st->candidate), cn_phase_name(st->phase), fmt_step(st, step, sizeof step), st->weight,
		 verdicts[0] ? " [" : "", verdicts, verdicts[0] ? "]" : "", wait[0] ? ", " : "", wait);
}

void cn_term_print_rollout(FILE *f, const struct cn_rollout_status *st, const struct cn_rollout_row *row,
			   const struct cn_policy *policy, int64_t now)
{
	char wait[256];
	cn_term_print_status(f, st);
	describe_wait(row, policy, now, wait, sizeof wait);
	if (wait[0])
		fprintf(f, "  %s\n", wait);
	for (size_t i = 0; i < st->nslos; i++)
		fprintf(f, "  %-16s %-12s %s\n", E(st->slos[i].slo), E(st->slos[i].verdict), E(st->slos[i].why));
	if (st->features)
		fprintf(f, "  per feature (candidate vs baseline): %s\n", E(st->features));
}

static int term_width(FILE *f)
{
	struct winsize ws;
	if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10)
		return ws.ws_col;
	return 80;
}

void cn_term_watch_header(FILE *f, bool tty, int64_t now, size_t active, int every_s)
{
	char clock[16];
	time_t t = (time_t)(now / 1000);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(clock, sizeof clock, "%H:%M:%S", &tm);
	if (tty)
		fprintf(f, "\033[H\033[2J"); /* home, clear the screen */
	fprintf(f, "%s  %zu active rollout%s (every %ds; Ctrl-C to stop)\n", clock, active, active == 1 ? "" : "s",
		every_s);
}

void cn_term_print_line(FILE *f, bool tty, const char *line)
{
	if (tty)
		fprintf(f, "%.*s\n", term_width(f) - 1, line);
	else
		fprintf(f, "%s\n", line);
}

void cn_term_redraw(FILE *f, const char *line)
{
	fprintf(f, "\r\033[K%.*s", term_width(f) - 1, line);
	fflush(f);
}

void cn_term_clear_line(FILE *f)
{
	fprintf(f, "\r\033[K");
}
