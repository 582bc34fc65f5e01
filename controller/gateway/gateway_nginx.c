/* nginx gateway adapter: writes the upstream's two `server ADDR weight=N;` lines into an include file (temp file +
 * rename), checks the whole config with `nginx -t` (restoring the old file when nginx refuses it), reloads the
 * master with SIGHUP and confirms the reload took: the master started a new generation of workers, and the error
 * log (when named) shows no [emerg]. What nginx serves is what the include held at the last confirmed reload, kept
 * in a dotfile beside it (.NAME.canary-loaded): an include that differs from it (written, then canaryd died before
 * the reload) reads as unknown, so the next reconcile reloads. Reloads of one nginx are serialised by an flock on
 * its config file. */
#include "canary/gateway.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "canary/clock.h"
#include "canary/file.h"
#include "gateway_int.h"

#define INCLUDE_MAX 65536   /* an include file larger than this is not ours */
#define NGINX_OUT_MAX 8192  /* what nginx -t may say that we keep */
#define MAX_CHILDREN 1024   /* a master's children we look at */
#define LOG_TAIL_MAX 16384  /* error log bytes read after a reload */
#define PCT_SUM_SLACK 1e-6

struct ngx_gw {
	struct cn_gateway base;
	char service[CN_NAME_MAX];
	char slot[2][CN_NAME_MAX];
	char addr[2][CN_NAME_MAX];
	char include[CN_PATH_MAX];
	char loaded[CN_PATH_MAX + 32]; /* the dotfile: what nginx loaded at the last confirmed reload */
	char config[CN_PATH_MAX];
	char pid_file[CN_PATH_MAX];
	char nginx[CN_PATH_MAX];
	char prefix[CN_PATH_MAX];
	char error_log[CN_PATH_MAX];
	int64_t timeout_ms;
};

/* ---- rendering and reading back (pure) ---- */

int cn_nginx_render(const char *service, const char *const slot[2], const char *const addr[2], const int w[2],
		    char *buf, size_t size)
{
	double pct[2];
	cn_haproxy_pct_from_weights(w, pct);
	int n = snprintf(buf, size,
			 "# Written by canary for service '%s' (gateway kind nginx); canary rewrites this file at every "
			 "weight change.\n# shares: %s %.4g%%, %s %.4g%%\n",
			 service, slot[0], pct[0], slot[1], pct[1]);
	if (n < 0 || (size_t)n >= size)
		return -1;
	size_t used = (size_t)n;
	for (int s = 0; s < 2; s++) {
		if (w[s] > 0)
			n = snprintf(buf + used, size - used, "server %s weight=%d;\n", addr[s], w[s]);
		else
			n = snprintf(buf + used, size - used, "server %s down;\n", addr[s]);
		if (n < 0 || (size_t)n >= size - used)
			return -1;
		used += (size_t)n;
	}
	return (int)used;
}

int cn_nginx_parse(const char *text, const char *const addr[2], int w[2], struct cn_err *err)
{
	int found[2] = { 0, 0 }, got[2] = { 0, 0 }, lineno = 0;
	char q[120];
	for (const char *p = text; *p;) {
		size_t len = strcspn(p, "\n");
		char line[512];
		lineno++;
		if (len >= sizeof line)
			return cn_fail(err, CN_EINTERNAL, "include line %d is longer than %zu bytes", lineno, sizeof line - 1);
		memcpy(line, p, len);
		line[len] = '\0';
		p += len + (p[len] == '\n');
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *tok[16], *save = NULL;
		int nt = 0;
		for (char *t = strtok_r(line, " \t\r;", &save); t && nt < 16; t = strtok_r(NULL, " \t\r;", &save))
			tok[nt++] = t;
		if (nt == 0)
			continue;
		if (strcmp(tok[0], "server") != 0 || nt < 2)
			return cn_fail(err, CN_EINTERNAL, "include line %d is not a server line: '%s'", lineno,
				       cn_hap_quote(tok[0], q, sizeof q));
		int s = strcmp(tok[1], addr[0]) == 0 ? 0 : strcmp(tok[1], addr[1]) == 0 ? 1 : -1;
		if (s < 0)
			return cn_fail(err, CN_EINTERNAL, "include line %d: server '%s' is neither slot's address ('%s', "
				       "'%s')", lineno, cn_hap_quote(tok[1], q, sizeof q), addr[0], addr[1]);
		if (found[s])
			return cn_fail(err, CN_EINTERNAL, "include line %d: server '%s' appears twice", lineno, addr[s]);
		found[s] = 1;
		got[s] = 1;
		int down = 0;
		for (int i = 2; i < nt; i++) {
			if (strcmp(tok[i], "down") == 0) {
				down = 1;
			} else if (strncmp(tok[i], "weight=", 7) == 0) {
				char *end;
				long v = strtol(tok[i] + 7, &end, 10);
				if (end == tok[i] + 7 || *end || v < 1 || v > 1000000)
					return cn_fail(err, CN_EINTERNAL, "include line %d: bad weight '%s'", lineno,
						       cn_hap_quote(tok[i], q, sizeof q));
				got[s] = (int)v;
			}
		}
		if (down)
			got[s] = 0;
	}
	for (int s = 0; s < 2; s++)
		if (!found[s])
			return cn_fail(err, CN_EINTERNAL, "include has no server line for '%s'", addr[s]);
	w[0] = got[0];
	w[1] = got[1];
	return 0;
}

/* ---- files ---- */

/* Reads a whole small file into a new string (*text, the caller frees). Returns 0, 1 if it does not exist, or
 * -CN_EINTERNAL (to the gateway a file it cannot read is its own failure, not the user's input). */
static int read_small(const char *path, size_t max, char **text, size_t *len, struct cn_err *err)
{
	int rc = cn_file_read(path, max, CN_FILE_MISSING_OK, text, len, err);
	if (rc < 0)
		err->code = CN_EINTERNAL;
	return rc < 0 ? -CN_EINTERNAL : rc;
}

/* Replaces path's content atomically: a temp file beside it, fsync, rename. mode applies to a new file. */
static int write_atomic(const char *path, const char *text, size_t len, struct cn_err *err)
{
	char tmp[CN_PATH_MAX + 64];
	const char *slash = strrchr(path, '/');
	int dirlen = slash ? (int)(slash - path) : 0;
	snprintf(tmp, sizeof tmp, "%.*s/.%s.tmp.%ld", dirlen, path, slash ? slash + 1 : path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return cn_fail(err, CN_EINTERNAL, "cannot write '%s': %s; canaryd needs write access to the include's "
			       "directory", tmp, strerror(errno));
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = errno;
			close(fd);
			unlink(tmp);
			return cn_fail(err, CN_EINTERNAL, "cannot write '%s': %s", tmp, strerror(e));
		}
		off += (size_t)w;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		int e = errno;
		unlink(tmp);
		return cn_fail(err, CN_EINTERNAL, "cannot write '%s': %s", tmp, strerror(e));
	}
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return cn_fail(err, CN_EINTERNAL, "cannot rename '%s' to '%s': %s", tmp, path, strerror(e));
	}
	return 0;
}

/* ---- the running nginx ---- */

static int read_proc(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return (int)n;
}

/* The master's pid from the pid file, checked to be a live nginx master. -CN_EUNAVAIL when nginx is not running. */
static int master_pid(const struct ngx_gw *g, pid_t *pid, struct cn_err *err)
{
	char buf[64], path[64], cmd[256];
	int n = read_proc(g->pid_file, buf, sizeof buf);
	if (n < 0)
		return cn_fail(err, CN_EUNAVAIL, "nginx is not running: cannot read its pid file '%s': %s", g->pid_file,
			       strerror(errno));
	char *end;
	long v = strtol(buf, &end, 10);
	if (end == buf || (*end && *end != '\n') || v <= 1 || v > 0x7fffffffL)
		return cn_fail(err, CN_EUNAVAIL, "nginx is not running: pid file '%s' holds '%.20s', not a pid",
			       g->pid_file, buf);
	snprintf(path, sizeof path, "/proc/%ld/cmdline", v);
	n = read_proc(path, cmd, sizeof cmd);
	if (n <= 0)
		return cn_fail(err, CN_EUNAVAIL, "nginx is not running: pid file '%s' names process %ld, which does not "
			       "exist", g->pid_file, v);
	for (int i = 0; i < n; i++)
		if (cmd[i] == '\0')
			cmd[i] = ' ';
	if (!strstr(cmd, "nginx: master process"))
		return cn_fail(err, CN_EUNAVAIL, "nginx is not running: pid file '%s' names process %ld, which is not "
			       "an nginx master", g->pid_file, v);
	*pid = (pid_t)v;
	return 0;
}

/* The master's children (its workers, cache manager ...): from /proc/PID/task/PID/children, else by scanning
 * /proc for processes whose parent it is. Returns how many (at most max). */
static int children(pid_t master, pid_t *kids, int max)
{
	char path[96], buf[8192];
	int n = 0;
	snprintf(path, sizeof path, "/proc/%ld/task/%ld/children", (long)master, (long)master);
	if (read_proc(path, buf, sizeof buf) >= 0) {
		char *save = NULL;
		for (char *t = strtok_r(buf, " \n", &save); t && n < max; t = strtok_r(NULL, " \n", &save))
			kids[n++] = (pid_t)strtol(t, NULL, 10);
		return n;
	}
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < max) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		char stat[512];
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		if (read_proc(path, stat, sizeof stat) <= 0)
			continue;
		const char *rp = strrchr(stat, ')');
		char state;
		long ppid;
		if (rp && sscanf(rp + 1, " %c %ld", &state, &ppid) == 2 && ppid == (long)master)
			kids[n++] = (pid_t)strtol(e->d_name, NULL, 10);
	}
	closedir(d);
	return n;
}

/* True while pid is an nginx worker that has not begun shutting down (it may still accept connections). */
static bool accepting(pid_t pid)
{
	char path[64], cmd[256];
	snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
	int n = read_proc(path, cmd, sizeof cmd);
	if (n <= 0)
		return false; /* gone (or a zombie) */
	for (int i = 0; i < n; i++)
		if (cmd[i] == '\0')
			cmd[i] = ' ';
	return strstr(cmd, "worker process") && !strstr(cmd, "shutting down");
}

static int file_size(const char *path, off_t *size)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -1;
	*size = st.st_size;
	return 0;
}

/* An [emerg] line the error log got after offset `from`, quoted into q; 1 if found. */
static int log_emerg(const char *path, off_t from, char *q, size_t qsz)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char *buf = malloc(LOG_TAIL_MAX + 1);
	ssize_t n = buf ? pread(fd, buf, LOG_TAIL_MAX, from) : -1;
	close(fd);
	int found = 0;
	if (n > 0) {
		buf[n] = '\0';
		if (strstr(buf, "[emerg]")) {
			cn_gw_quote_output(buf, "[emerg]", q, qsz);
			found = 1;
		}
	}
	free(buf);
	return found;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* SIGHUP to the master, then waits until it has started a worker it did not have before (the new config is
 * live), the error log shows an [emerg] (it refused), the master is gone, or the time is up. */
static int reload(const struct ngx_gw *g, pid_t master, int64_t deadline, struct cn_err *err)
{
	pid_t *before = NULL, *now = NULL;
	int rc = 0;
	off_t log_from = 0;
	char q[240];

	before = malloc(sizeof *before * MAX_CHILDREN);
	now = malloc(sizeof *now * MAX_CHILDREN);
	if (!before || !now) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory reloading nginx");
		goto out;
	}
	int nb = children(master, before, MAX_CHILDREN);
	bool have_log = g->error_log[0] && file_size(g->error_log, &log_from) == 0;
	if (kill(master, SIGHUP) < 0) {
		if (errno == ESRCH)
			rc = cn_fail(err, CN_EUNAVAIL, "nginx master %ld exited before its reload", (long)master);
		else
			rc = cn_fail(err, CN_EINTERNAL, "cannot signal nginx master %ld: %s; run canaryd as the user the "
				     "nginx master runs as", (long)master, strerror(errno));
		goto out;
	}
	for (;;) {
		int nn = children(master, now, MAX_CHILDREN);
		bool fresh = false;
		for (int i = 0; i < nn && !fresh; i++) {
			bool old = false;
			for (int j = 0; j < nb && !old; j++)
				old = now[i] == before[j];
			fresh = !old;
		}
		/* a new generation runs, and every old worker has stopped taking connections (gone, or titled
		 * "worker process is shutting down": its listening sockets are closed; requests in flight finish) */
		bool old_quiet = true;
		for (int j = 0; j < nb && fresh && old_quiet; j++)
			old_quiet = !accepting(before[j]);
		if (fresh && old_quiet)
			goto out;
		if (have_log && log_emerg(g->error_log, log_from, q, sizeof q)) {
			rc = cn_fail(err, CN_EINTERNAL, "nginx refused the reload: '%s'", q);
			goto out;
		}
		if (kill(master, 0) < 0 && errno == ESRCH) {
			rc = cn_fail(err, CN_EUNAVAIL, "nginx master %ld exited during the reload", (long)master);
			goto out;
		}
		if (cn_mono_ms() >= deadline) {
			rc = cn_fail(err, CN_EINTERNAL, "nginx master %ld %s within %lld ms of SIGHUP; the reload did not "
				     "take (see nginx's error log)", (long)master, fresh ? "kept old workers accepting"
				     : "started no new workers", (long long)g->timeout_ms);
			goto out;
		}
		sleep_ms(2);
	}
out:
	free(before);
	free(now);
	return rc;
}

/* Finds the nginx binary: a path as given, else in PATH and the sbin directories. */
static int find_nginx(const struct ngx_gw *g, char *out, size_t size, struct cn_err *err)
{
	if (strchr(g->nginx, '/')) {
		snprintf(out, size, "%s", g->nginx);
		return 0;
	}
	const char *env = getenv("PATH");
	char path[4096];
	snprintf(path, sizeof path, "%s:/usr/local/sbin:/usr/sbin:/sbin", env ? env : "/usr/bin:/bin");
	char *save = NULL;
	for (char *d = strtok_r(path, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		if (snprintf(out, size, "%s/%s", d, g->nginx) >= (int)size)
			continue;
		if (access(out, X_OK) == 0)
			return 0;
	}
	return cn_fail(err, CN_EUNAVAIL, "nginx binary '%s' not found in PATH or the sbin directories; set the "
		       "service's gateway.nginx to its path", g->nginx);
}

/* nginx -t on the config as it is on disk now. */
static int validate(const struct ngx_gw *g, int64_t deadline, struct cn_err *err)
{
	char bin[CN_PATH_MAX + 64], q[300];
	int rc = find_nginx(g, bin, sizeof bin, err);
	if (rc < 0)
		return rc;
	const char *argv[10];
	int n = 0;
	argv[n++] = bin;
	if (g->prefix[0]) {
		argv[n++] = "-p";
		argv[n++] = g->prefix;
	}
	argv[n++] = "-c";
	argv[n++] = g->config;
	argv[n++] = "-t";
	argv[n++] = "-q";
	argv[n] = NULL;
	char *out = malloc(NGINX_OUT_MAX);
	if (!out)
		return cn_fail(err, CN_EINTERNAL, "out of memory running nginx -t");
	struct cn_run r = { .out = NULL, .outsz = 0, .errout = out, .errsz = NGINX_OUT_MAX };
	int64_t left = deadline - cn_mono_ms();
	rc = cn_gw_run(argv, left > 1 ? left : 1, &r, err);
	if (rc == 0 && r.timed_out)
		rc = cn_fail(err, CN_EUNAVAIL, "'nginx -t -c %s' did not finish within %lld ms", g->config,
			     (long long)g->timeout_ms);
	else if (rc == 0 && r.status != 0)
		rc = cn_fail(err, CN_EINTERNAL, "'nginx -t -c %s' refused the new weights (exit %d): '%s'", g->config,
			     r.status, cn_gw_quote_output(out, "[emerg]", q, sizeof q));
	free(out);
	return rc;
}

/* Takes the lock that serialises canary's reloads of one nginx: an flock on its config file, waited for until
 * the deadline. Returns the locked fd or < 0 with err set. */
static int lock_config(const struct ngx_gw *g, int64_t deadline, struct cn_err *err)
{
	int fd = open(g->config, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cn_fail(err, CN_EINTERNAL, "cannot open nginx config '%s': %s", g->config, strerror(errno));
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			int e = errno;
			close(fd);
			return cn_fail(err, CN_EINTERNAL, "cannot lock nginx config '%s': %s", g->config, strerror(e));
		}
		if (cn_mono_ms() >= deadline) {
			close(fd);
			return cn_fail(err, CN_EUNAVAIL, "another canary process kept nginx config '%s' locked for %lld ms",
				       g->config, (long long)g->timeout_ms);
		}
		sleep_ms(2);
	}
	return fd;
}

/* Puts back the include as it was (or removes it if there was none); a failure is added to err's message. */
static void restore(const struct ngx_gw *g, const char *old, size_t old_len, struct cn_err *err)
{
	struct cn_err rerr = { 0 };
	int rc = 0;
	if (old)
		rc = write_atomic(g->include, old, old_len, &rerr);
	else if (unlink(g->include) < 0 && errno != ENOENT)
		rc = cn_fail(&rerr, CN_EINTERNAL, "cannot remove '%s': %s", g->include, strerror(errno));
	if (rc < 0)
		cn_err_prefix(err, "the old include could not be put back (%s)", rerr.msg);
}

static int ngx_set_weights(struct cn_gateway *base, const double pct[2], struct cn_err *err)
{
	struct ngx_gw *g = (struct ngx_gw *)base;
	int w[2], got[2], rc, lock = -1;
	char *cur = NULL, *loaded = NULL, *back = NULL, text[2 * CN_NAME_MAX * 2 + 512];
	size_t cur_len = 0, loaded_len = 0, back_len = 0;
	int64_t deadline = cn_mono_ms() + g->timeout_ms;
	const char *slot[2] = { g->slot[0], g->slot[1] }, *addr[2] = { g->addr[0], g->addr[1] };
	pid_t master;

	if (!pct || !isfinite(pct[0]) || !isfinite(pct[1]) || pct[0] < 0 || pct[1] < 0 ||
	    fabs(pct[0] + pct[1] - 100.0) > PCT_SUM_SLACK)
		return cn_fail(err, CN_EINPUT, "traffic shares %g %% / %g %% must be within 0..100 and sum to 100",
			       pct ? pct[0] : NAN, pct ? pct[1] : NAN);
	if ((rc = cn_weights_from_pct(pct[0], CN_NGINX_WEIGHT_MAX, w, err)) < 0)
		return rc;
	int len = cn_nginx_render(g->service, slot, addr, w, text, sizeof text);
	if (len < 0)
		return cn_fail(err, CN_EINTERNAL, "the include for service '%s' does not fit in %zu bytes", g->service,
			       sizeof text);

	if ((lock = lock_config(g, deadline, err)) < 0)
		return lock;
	if ((rc = master_pid(g, &master, err)) < 0)
		goto out;
	int have_cur = read_small(g->include, INCLUDE_MAX, &cur, &cur_len, err);
	if (have_cur < 0) {
		rc = have_cur;
		goto out;
	}
	int have_loaded = read_small(g->loaded, INCLUDE_MAX, &loaded, &loaded_len, err);
	if (have_loaded < 0) {
		rc = have_loaded;
		goto out;
	}
	bool same = have_cur == 0 && cur_len == (size_t)len && memcmp(cur, text, (size_t)len) == 0;
	bool live = same && have_loaded == 0 && loaded_len == (size_t)len && memcmp(loaded, text, (size_t)len) == 0;
	if (!live) {
		if (!same && (rc = write_atomic(g->include, text, (size_t)len, err)) < 0)
			goto out;
		if ((rc = validate(g, deadline, err)) < 0 || (rc = reload(g, master, deadline, err)) < 0) {
			if (!same)
				restore(g, have_cur == 0 ? cur : NULL, cur_len, err);
			goto out;
		}
		if ((rc = write_atomic(g->loaded, text, (size_t)len, err)) < 0)
			goto out;
	}
	/* read back what is on disk now */
	int have_back = read_small(g->include, INCLUDE_MAX, &back, &back_len, err);
	if (have_back != 0) {
		rc = have_back < 0 ? have_back
				   : cn_fail(err, CN_EINTERNAL, "include '%s' is gone right after it was written", g->include);
		goto out;
	}
	if ((rc = cn_nginx_parse(back, addr, got, err)) < 0) {
		cn_err_prefix(err, "include '%s'", g->include);
		goto out;
	}
	if (got[0] != w[0] || got[1] != w[1]) {
		rc = cn_fail(err, CN_EINTERNAL, "include '%s' reads back weights %s=%d %s=%d after writing %d/%d; another "
			     "process may be writing it", g->include, g->addr[0], got[0], g->addr[1], got[1], w[0], w[1]);
		goto out;
	}
	rc = 0;
out:
	if (lock >= 0)
		close(lock);
	free(cur);
	free(loaded);
	free(back);
	return rc;
}

static int ngx_get_weights(struct cn_gateway *base, double pct[2], struct cn_err *err)
{
	struct ngx_gw *g = (struct ngx_gw *)base;
	char *cur = NULL, *loaded = NULL;
	size_t cur_len = 0, loaded_len = 0;
	int w[2], rc;
	pid_t master;
	const char *addr[2] = { g->addr[0], g->addr[1] };

	if ((rc = master_pid(g, &master, err)) < 0)
		return rc;
	int have_cur = read_small(g->include, INCLUDE_MAX, &cur, &cur_len, err);
	int have_loaded = have_cur == 0 ? read_small(g->loaded, INCLUDE_MAX, &loaded, &loaded_len, err) : 1;
	if (have_cur < 0 || have_loaded < 0) {
		rc = have_cur < 0 ? have_cur : have_loaded;
		goto out;
	}
	struct cn_err perr = { 0 };
	if (have_cur == 0 && have_loaded == 0 && cur_len == loaded_len && memcmp(cur, loaded, cur_len) == 0 &&
	    cn_nginx_parse(cur, addr, w, &perr) == 0) {
		cn_haproxy_pct_from_weights(w, pct);
	} else {
		/* missing, foreign, or written but not seen loaded: nginx may serve something else */
		pct[0] = pct[1] = NAN;
	}
	rc = 0;
out:
	free(cur);
	free(loaded);
	return rc;
}

static void ngx_close(struct cn_gateway *base)
{
	free(base);
}

static const struct cn_gateway_ops ngx_ops = {
	.name = "nginx",
	.set_weights = ngx_set_weights,
	.get_weights = ngx_get_weights,
	.close = ngx_close,
};

struct cn_gateway *cn_gateway_nginx_open(const struct cn_service *svc, struct cn_err *err)
{
	const char *paths[] = { svc->gateway.include, svc->gateway.config, svc->gateway.pid_file };
	const char *names[] = { "include", "config", "pid_file" };
	for (int i = 0; i < 3; i++)
		if (paths[i][0] != '/') {
			cn_fail(err, CN_EINPUT, "service '%s': gateway %s '%s' must be an absolute path", svc->name,
				names[i], paths[i]);
			return NULL;
		}
	for (int s = 0; s < 2; s++)
		if (!svc->slots[s].server[0] || strpbrk(svc->slots[s].server, " \t\n;{}#")) {
			cn_fail(err, CN_EINPUT, "service '%s': slots[%d].server '%s' must be an nginx server address "
				"such as 127.0.0.1:8001", svc->name, s, svc->slots[s].server);
			return NULL;
		}
	if (strcmp(svc->slots[0].server, svc->slots[1].server) == 0) {
		cn_fail(err, CN_EINPUT, "service '%s': both slots use server '%s'; give each slot its own address",
			svc->name, svc->slots[0].server);
		return NULL;
	}
	const char *slash = strrchr(svc->gateway.include, '/');
	struct ngx_gw *g = calloc(1, sizeof *g);
	if (!g) {
		cn_fail(err, CN_EINTERNAL, "out of memory opening the gateway of service '%s'", svc->name);
		return NULL;
	}
	g->base.ops = &ngx_ops;
	snprintf(g->service, sizeof g->service, "%s", svc->name);
	for (int s = 0; s < 2; s++) {
		snprintf(g->slot[s], sizeof g->slot[s], "%s", svc->slots[s].name);
		snprintf(g->addr[s], sizeof g->addr[s], "%s", svc->slots[s].server);
	}
	snprintf(g->include, sizeof g->include, "%s", svc->gateway.include);
	snprintf(g->loaded, sizeof g->loaded, "%.*s/.%s.canary-loaded", (int)(slash - svc->gateway.include),
		 svc->gateway.include, slash + 1);
	snprintf(g->config, sizeof g->config, "%s", svc->gateway.config);
	snprintf(g->pid_file, sizeof g->pid_file, "%s", svc->gateway.pid_file);
	snprintf(g->nginx, sizeof g->nginx, "%s", svc->gateway.nginx[0] ? svc->gateway.nginx : "nginx");
	snprintf(g->prefix, sizeof g->prefix, "%s", svc->gateway.prefix);
	snprintf(g->error_log, sizeof g->error_log, "%s", svc->gateway.error_log);
	g->timeout_ms = svc->gateway.timeout_ms > 0 ? svc->gateway.timeout_ms : 10000;
	return &g->base;
}
