/* canaryd's file descriptors. At start the soft RLIMIT_NOFILE goes up to the hard limit (systemd's LimitNOFILE=,
 * `ulimit -Hn`), so the operator's setting is the one in force. Running out is then an operator's problem with one
 * fix: every caller that sees EMFILE/ENFILE hands the error here, which says so once a minute with what to do,
 * instead of each rollout logging its own line at every turn (3,830 lines in 35 s under ulimit -n 1024). */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "canary/clock.h"
#include "canary/metrics.h"
#include "daemon_fd_int.h"
#include "daemon_int.h"

#define FD_LOG_EVERY_MS 60000

static long fd_limit;                 /* set once by daemon_fd_init, before any thread starts */
static atomic_ullong fd_exhausted;    /* every out-of-descriptor error */
static pthread_mutex_t fd_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t fd_logged_ms;          /* monotonic: the last fd.exhausted line; 0: none yet (under fd_lock) */
static unsigned long long fd_unlogged; /* errors since that line (under fd_lock) */

void daemon_fd_init(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		dlog("warn", "fd.limit", dstr("error", strerror(errno)));
		return;
	}
	long soft_was = rl.rlim_cur == RLIM_INFINITY ? -1 : (long)rl.rlim_cur;
	const char *note = NULL;
	if (rl.rlim_cur != rl.rlim_max) {
		struct rlimit up = { .rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max };
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl.rlim_cur = rl.rlim_max;
		else
			note = strerror(errno);
	}
	fd_limit = rl.rlim_cur == RLIM_INFINITY ? 0 : (long)rl.rlim_cur;
	/* the loop's and the SLA observer's metrics groups each have at most CN_METRICS_GROUP_MAX_INFLIGHT reads out,
	 * DAEMON_FDS_PER_ROLLOUT descriptors each: with room for both full, any number of rollouts fits */
	long reads = fd_limit > DAEMON_FDS_BASE ? (fd_limit - DAEMON_FDS_BASE) / (2 * DAEMON_FDS_PER_ROLLOUT) : 0;
	bool all = fd_limit == 0 || reads >= CN_METRICS_GROUP_MAX_INFLIGHT;
	dlog(all ? "info" : "warn", "fd.limit", dint("limit", fd_limit), dint("soft_was", soft_was),
	     dint("hard", rl.rlim_max == RLIM_INFINITY ? -1 : (int64_t)rl.rlim_max),
	     dint("reads_at_once", all ? CN_METRICS_GROUP_MAX_INFLIGHT : reads), dstr("error", note),
	     dstr("hint", all ? NULL
			      : "fewer than 512 metric reads fit at once (more rollouts than that hold when they read "
				"together): raise LimitNOFILE= (systemd) or ulimit -n; 4,160 carries any number"));
}

long daemon_fd_limit(void)
{
	return fd_limit;
}

unsigned long long daemon_fd_exhausted_total(void)
{
	return atomic_load(&fd_exhausted);
}

bool daemon_fd_exhausted(const char *msg)
{
	/* strerror(EMFILE) and strerror(ENFILE), as every adapter and libpq put them in their messages */
	return msg && (strstr(msg, strerror(EMFILE)) || strstr(msg, strerror(ENFILE)));
}

void daemon_fd_reason(char *why, size_t size)
{
	if (size == 0)
		return;
	snprintf(why, size, "holding: out of file descriptors (limit %ld): raise LimitNOFILE / ulimit -n; each rollout "
		 "needs about %d", fd_limit, DAEMON_FDS_PER_ROLLOUT);
}

bool daemon_fd_check(const char *where, const char *msg)
{
	if (!daemon_fd_exhausted(msg))
		return false;
	atomic_fetch_add(&fd_exhausted, 1);
	int64_t now = cn_mono_ms();
	pthread_mutex_lock(&fd_lock);
	if (fd_logged_ms != 0 && now - fd_logged_ms < FD_LOG_EVERY_MS) {
		fd_unlogged++;
		pthread_mutex_unlock(&fd_lock);
		return true;
	}
	unsigned long long left_out = fd_unlogged;
	fd_unlogged = 0;
	fd_logged_ms = now;
	pthread_mutex_unlock(&fd_lock);
	char what[160];
	bool system = strstr(msg, strerror(ENFILE)) != NULL;
	if (system)
		snprintf(what, sizeof what, "the system is out of file descriptors: raise fs.file-max (sysctl) or run "
			 "fewer processes");
	else
		snprintf(what, sizeof what, "out of file descriptors (limit %ld): raise LimitNOFILE / ulimit -n; each "
			 "rollout needs about %d", fd_limit, DAEMON_FDS_PER_ROLLOUT);
	dlog("error", "fd.exhausted", dstr("error", what), dstr("where", where), dstr("detail", msg),
	     dint("since_last_line", (int64_t)left_out), dint("total", (int64_t)atomic_load(&fd_exhausted)));
	return true;
}
