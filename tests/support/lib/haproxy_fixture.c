/* A real HAProxy for tests (see haproxy_fixture.h): writes a config into a temp dir, runs `haproxy -db`, waits for
 * the admin socket, and tears everything down again. */
#include "haproxy_fixture.h"
#include "port_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int hap_free_port(void)
{
	return port_reserve(NULL);
}

int hap_cmd(struct hap *h, const char *cmd, char *out, size_t outsz)
{
	int fd = -1, rc = -1;
	size_t n = 0;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char line[1024];

	if (outsz == 0 || snprintf(line, sizeof line, "%s\n", cmd) >= (int)sizeof line) {
		snprintf(h->err, sizeof h->err, "hap_cmd: command '%.40s' too long", cmd);
		goto out;
	}
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", h->sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
		snprintf(h->err, sizeof h->err, "cannot connect to '%s': %s", h->sock_path, strerror(errno));
		goto out;
	}
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (send(fd, line, strlen(line), MSG_NOSIGNAL) != (ssize_t)strlen(line)) {
		snprintf(h->err, sizeof h->err, "cannot send '%s' to '%s': %s", cmd, h->sock_path, strerror(errno));
		goto out;
	}
	for (;;) {
		char buf[1024];
		ssize_t r = recv(fd, buf, sizeof buf, 0);
		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			snprintf(h->err, sizeof h->err, "no answer to '%s' from '%s': %s", cmd, h->sock_path,
				 strerror(errno));
			goto out;
		}
		size_t take = (size_t)r < outsz - 1 - n ? (size_t)r : outsz - 1 - n;
		memcpy(out + n, buf, take);
		n += take;
	}
	rc = 0;
out:
	if (outsz)
		out[n] = '\0';
	if (fd >= 0)
		close(fd);
	return rc;
}

int hap_get_weight(struct hap *h, const char *srv)
{
	char cmd[2 * HAP_NAME_MAX + 16], ans[256];
	snprintf(cmd, sizeof cmd, "get weight %s/%s", h->backend, srv);
	if (hap_cmd(h, cmd, ans, sizeof ans) < 0)
		return -1;
	char *end;
	long w = strtol(ans, &end, 10);
	if (end == ans || strncmp(end, " (initial", 9) != 0 || w < 0 || w > 256) {
		ans[strcspn(ans, "\n")] = '\0';
		snprintf(h->err, sizeof h->err, "unexpected answer '%s' to '%s'", ans, cmd);
		return -1;
	}
	return (int)w;
}

static int write_cfg(struct hap *h, const struct hap_opts *o)
{
	FILE *f = fopen(h->cfg_path, "w");
	if (!f) {
		snprintf(h->err, sizeof h->err, "cannot write '%s': %s", h->cfg_path, strerror(errno));
		return -1;
	}
	fprintf(f,
		"global\n"
		"    stats socket %s mode 600 level admin\n"
		"    stats socket ipv4@127.0.0.1:%d level admin\n"
		"    maxconn 4096\n"
		"defaults\n"
		"    mode http\n"
		"    timeout connect 2s\n"
		"    timeout client 30s\n"
		"    timeout server 30s\n"
		"frontend fe\n"
		"    bind 127.0.0.1:%d\n"
		"    default_backend %s\n"
		"backend %s\n"
		"    balance roundrobin\n"
		"    server %s %s weight %d\n"
		"    server %s %s weight %d\n",
		h->sock_path, h->admin_port, h->port, o->backend, o->backend, o->srv[0], o->addr[0], o->weight[0],
		o->srv[1], o->addr[1], o->weight[1]);
	if (fclose(f) != 0) {
		snprintf(h->err, sizeof h->err, "cannot write '%s': %s", h->cfg_path, strerror(errno));
		return -1;
	}
	return 0;
}

/* The last line of haproxy's log, for error messages. */
static void log_tail(const struct hap *h, char *buf, size_t bufsz)
{
	buf[0] = '\0';
	FILE *f = fopen(h->log_path, "r");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0])
			snprintf(buf, bufsz, "%s", line);
	}
	fclose(f);
}

/* One attempt with fresh ports; returns 0, -1 on a hard failure, -2 if haproxy exited (maybe a port race). */
static int start_once(struct hap *h, const struct hap_opts *o, const char *bin)
{
	/* haproxy is not ours to teach port 0: reserve its ports, so no concurrent test is given them too */
	struct cn_err err = { 0 };
	if (h->port > 0)
		port_release(h->port); /* an earlier attempt's, which some other process took */
	if (h->admin_port > 0)
		port_release(h->admin_port);
	h->port = port_reserve(&err);
	h->admin_port = h->port < 0 ? -1 : port_reserve(&err);
	if (h->port < 0 || h->admin_port < 0) {
		snprintf(h->err, sizeof h->err, "cannot find free ports on 127.0.0.1: %s", err.msg);
		return -1;
	}
	snprintf(h->runtime_api_tcp, sizeof h->runtime_api_tcp, "127.0.0.1:%d", h->admin_port);
	if (write_cfg(h, o) < 0)
		return -1;

	pid_t pid = fork();
	if (pid < 0) {
		snprintf(h->err, sizeof h->err, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int fd = open(h->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		execl(bin, bin, "-db", "-f", h->cfg_path, (char *)NULL);
		_exit(127);
	}
	h->pid = pid;

	long deadline = now_ms() + 5000;
	while (now_ms() < deadline) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			char tail[300];
			log_tail(h, tail, sizeof tail);
			h->pid = 0;
			snprintf(h->err, sizeof h->err, "haproxy '%s' exited (status %d): %s", bin,
				 WIFEXITED(status) ? WEXITSTATUS(status) : -1, tail);
			return -2;
		}
		char ans[64];
		if (access(h->sock_path, F_OK) == 0 && hap_cmd(h, "show info", ans, sizeof ans) == 0 && ans[0])
			return 0;
		sleep_ms(20);
	}
	snprintf(h->err, sizeof h->err, "haproxy's admin socket '%s' did not answer within 5 s", h->sock_path);
	return -1;
}

int hap_start_opts(struct hap *h, const struct hap_opts *o)
{
	memset(h, 0, sizeof *h);
	snprintf(h->dir, sizeof h->dir, "/tmp/canary-hap-XXXXXX");
	if (!mkdtemp(h->dir)) {
		snprintf(h->err, sizeof h->err, "mkdtemp '%s': %s", h->dir, strerror(errno));
		h->dir[0] = '\0';
		return -1;
	}
	snprintf(h->cfg_path, sizeof h->cfg_path, "%s/haproxy.cfg", h->dir);
	snprintf(h->log_path, sizeof h->log_path, "%s/haproxy.log", h->dir);
	snprintf(h->sock_path, sizeof h->sock_path, "%s/admin.sock", h->dir);
	snprintf(h->runtime_api, sizeof h->runtime_api, "unix:%s", h->sock_path);
	snprintf(h->backend, sizeof h->backend, "%s", o->backend);
	for (int i = 0; i < 2; i++)
		snprintf(h->srv[i], sizeof h->srv[i], "%s", o->srv[i]);

	const char *bin = o->haproxy ? o->haproxy : getenv("HAPROXY_BIN");
	if (!bin || !*bin)
		bin = "/usr/sbin/haproxy";
	int rc = -2;
	for (int attempt = 0; attempt < 3 && rc == -2; attempt++)
		rc = start_once(h, o, bin);
	if (rc != 0) {
		char keep[sizeof h->err];
		memcpy(keep, h->err, sizeof keep);
		hap_stop(h);
		memcpy(h->err, keep, sizeof keep);
		return -1;
	}
	return 0;
}

int hap_start(struct hap *h, const char *backend, const char *srv_a, const char *addr_a, const char *srv_b,
	      const char *addr_b)
{
	struct hap_opts o = {
		.backend = backend,
		.srv = { srv_a, srv_b },
		.addr = { addr_a, addr_b },
		.weight = { 1, 0 },
	};
	return hap_start_opts(h, &o);
}

void hap_stop(struct hap *h)
{
	if (h->pid > 0) {
		int status;
		kill(h->pid, SIGTERM);
		long deadline = now_ms() + 3000;
		while (waitpid(h->pid, &status, WNOHANG) == 0) {
			if (now_ms() > deadline) {
				kill(h->pid, SIGKILL);
				waitpid(h->pid, &status, 0);
				break;
			}
			sleep_ms(10);
		}
		h->pid = 0;
	}
	if (h->dir[0]) {
		unlink(h->cfg_path);
		unlink(h->log_path);
		unlink(h->sock_path);
		rmdir(h->dir);
		h->dir[0] = '\0';
	}
}
