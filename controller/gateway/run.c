/* Runs a gateway's helper program (nginx -t, the command gateway's set and get) without a shell: posix_spawnp in a
 * process group of its own, stdin from /dev/null, stdout and stderr captured into bounded buffers, and the whole
 * group killed when the time is up, so a hung or chatty program can neither stall canaryd nor fill its memory. */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "canary/clock.h"
#include "gateway_int.h"

extern char **environ;

/* Appends what fd has to the capture (up to its size; the rest is read and dropped). Returns 1 at EOF. */
static int drain(int fd, char *buf, size_t size, size_t *len, bool *truncated)
{
	char chunk[4096];
	ssize_t r = read(fd, chunk, sizeof chunk);
	if (r < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : 1;
	if (r == 0)
		return 1;
	size_t room = size > *len + 1 ? size - 1 - *len : 0, take = (size_t)r < room ? (size_t)r : room;
	if (buf && take) {
		memcpy(buf + *len, chunk, take);
		*len += take;
		buf[*len] = '\0';
	}
	if (take < (size_t)r)
		*truncated = true;
	return 0;
}

static int pidfd_open_compat(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

int cn_gw_run(const char *const *argv, int64_t timeout_ms, struct cn_run *r, struct cn_err *err)
{
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, pfd = -1, rc = 0;
	pid_t pid = -1;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	bool fa_ok = false, at_ok = false;
	int64_t t0 = cn_mono_ms(), deadline = t0 + timeout_ms;

	r->out_len = r->err_len = 0;
	r->out_truncated = r->err_truncated = r->timed_out = false;
	r->status = -1;
	if (r->out && r->outsz)
		r->out[0] = '\0';
	if (r->errout && r->errsz)
		r->errout[0] = '\0';
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		rc = cn_fail(err, CN_EINTERNAL, "cannot run '%s': pipe: %s", argv[0], strerror(errno));
		goto out;
	}
	if (posix_spawn_file_actions_init(&fa) != 0) {
		rc = cn_fail(err, CN_EINTERNAL, "cannot run '%s': out of memory", argv[0]);
		goto out;
	}
	fa_ok = true;
	if (posix_spawnattr_init(&at) != 0) {
		rc = cn_fail(err, CN_EINTERNAL, "cannot run '%s': out of memory", argv[0]);
		goto out;
	}
	at_ok = true;
	if (posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, outp[1], 1) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, errp[1], 2) != 0) {
		rc = cn_fail(err, CN_EINTERNAL, "cannot run '%s': out of memory", argv[0]);
		goto out;
	}
	/* a clean start: no blocked signals, and the signals canaryd may ignore back at their defaults */
	sigset_t none, def;
	sigemptyset(&none);
	sigemptyset(&def);
	const int sigs[] = { SIGPIPE, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM };
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaddset(&def, sigs[i]);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &def);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	int e = posix_spawnp(&pid, argv[0], &fa, &at, (char *const *)argv, environ);
	if (e != 0) {
		pid = -1;
		rc = cn_fail(err, CN_EUNAVAIL, "cannot run '%s': %s", argv[0], strerror(e));
		goto out;
	}
	close(outp[1]);
	close(errp[1]);
	outp[1] = errp[1] = -1;
	pfd = pidfd_open_compat(pid);

	bool out_open = true, err_open = true, exited = false;
	while (!exited || out_open || err_open) {
		int64_t left = deadline - cn_mono_ms();
		if (left <= 0) {
			r->timed_out = true;
			break;
		}
		struct pollfd p[3];
		int np = 0, io = -1, ie = -1, ip = -1;
		if (out_open)
			p[io = np++] = (struct pollfd){ .fd = outp[0], .events = POLLIN };
		if (err_open)
			p[ie = np++] = (struct pollfd){ .fd = errp[0], .events = POLLIN };
		if (!exited && pfd >= 0)
			p[ip = np++] = (struct pollfd){ .fd = pfd, .events = POLLIN };
		/* without a pidfd, look at the child every few ms */
		int wait_ms = (!exited && pfd < 0) ? 2 : (int)(left < 1000 ? left : 1000);
		if (exited)
			wait_ms = 0; /* the program is gone: take what its pipes hold now, wait for no one else */
		int n = poll(p, (nfds_t)np, wait_ms);
		if (n < 0 && errno != EINTR) {
			rc = cn_fail(err, CN_EINTERNAL, "running '%s': poll: %s", argv[0], strerror(errno));
			break;
		}
		if (io >= 0 && (p[io].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    drain(outp[0], r->out, r->outsz, &r->out_len, &r->out_truncated))
			out_open = false;
		if (ie >= 0 && (p[ie].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    drain(errp[0], r->errout, r->errsz, &r->err_len, &r->err_truncated))
			err_open = false;
		if (exited && n <= 0)
			break; /* pipes kept open by a leftover background process: it is killed below */
		if (!exited && (ip < 0 || (p[ip].revents & POLLIN))) {
			siginfo_t si;
			memset(&si, 0, sizeof si);
			/* WNOWAIT: the child stays a zombie, so its pid (our group's id) cannot be reused yet */
			if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
				exited = true;
		}
	}
	/* nothing the program started outlives it */
	kill(-pid, SIGKILL);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status))
		r->status = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		r->status = 128 + WTERMSIG(status);
	r->elapsed_ms = cn_mono_ms() - t0;
out:
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	if (at_ok)
		posix_spawnattr_destroy(&at);
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	if (pfd >= 0)
		close(pfd);
	return rc;
}

char *cn_gw_quote_output(const char *text, const char *prefer, char *buf, size_t bufsz)
{
	const char *line = NULL;
	if (prefer) {
		const char *hit = strstr(text, prefer);
		if (hit) {
			while (hit > text && hit[-1] != '\n')
				hit--;
			line = hit;
		}
	}
	if (!line) { /* the first line with something on it */
		line = text;
		while (*line == '\n' || *line == '\r' || *line == ' ' || *line == '\t')
			line++;
	}
	char one[1024];
	size_t n = strcspn(line, "\n");
	if (n >= sizeof one)
		n = sizeof one - 1;
	memcpy(one, line, n);
	one[n] = '\0';
	cn_hap_quote(one, buf, bufsz);
	size_t len = strlen(buf);
	if (line[n] == '\n' && line[n + 1] && len + 5 < bufsz && (len < 3 || strcmp(buf + len - 3, "...") != 0))
		snprintf(buf + len, bufsz - len, " ..."); /* more lines follow */
	return buf;
}
