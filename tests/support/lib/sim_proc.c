/* Test helpers: start/stop support programs such as modelsim, a minimal loopback HTTP client, a series lookup. */
#include "sim_proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HTTP_MAX (4u << 20)

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sim_bin_path(const char *name, char *buf, size_t size, struct cn_err *err)
{
	const char *dir = getenv("CANARY_BINARY_DIR");
	if (!dir || !*dir)
		return cn_fail(err, CN_EUNAVAIL, "CANARY_BINARY_DIR is not set: run the test through ctest or set it "
			       "to the build directory");
	int n = snprintf(buf, size, "%s/tests/%s", dir, name);
	if (n < 0 || (size_t)n >= size)
		return cn_fail(err, CN_EUNAVAIL, "path of '%s' under '%s' is too long", name, dir);
	return 0;
}

int sim_proc_start(char *const argv[], int timeout_ms, struct sim_proc *out, struct cn_err *err)
{
	int fds[2] = { -1, -1 };
	pid_t pid = 0;
	char line[sizeof out->line];
	size_t len = 0;
	int rc = 0;

	if (pipe(fds) < 0)
		return cn_fail(err, CN_EUNAVAIL, "pipe for '%s': %s", argv[0], strerror(errno));
	pid_t parent = getpid();
	pid = fork();
	if (pid < 0) {
		rc = cn_fail(err, CN_EUNAVAIL, "fork for '%s': %s", argv[0], strerror(errno));
		goto out;
	}
	if (pid == 0) {
		/* a test that fails mid-way (cmocka longjmps out) must not leave the program running */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	fds[1] = -1;

	long long deadline = now_ms() + timeout_ms;
	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0) {
			rc = cn_fail(err, CN_EUNAVAIL, "'%s' printed no ready line within %d ms", argv[0], timeout_ms);
			goto out;
		}
		struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
		int pr = poll(&pfd, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		char c;
		ssize_t r = read(fds[0], &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = cn_fail(err, CN_EUNAVAIL, "'%s' exited before it was ready (see its stderr)", argv[0]);
			goto out;
		}
		if (c == '\n')
			break;
		if (len + 1 < sizeof line)
			line[len++] = c;
	}
	line[len] = '\0';

	const char *colon = strrchr(line, ':');
	long port = 0;
	if (colon) {
		char *end = NULL;
		port = strtol(colon + 1, &end, 10);
		if (end == colon + 1 || *end != '\0' || port <= 0 || port > 65535)
			port = 0;
	}
	out->pid = pid;
	out->out_fd = fds[0];
	out->port = (int)port;
	memcpy(out->line, line, len + 1);
	return 0;
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	return rc;
}

int sim_proc_stop(struct sim_proc *p)
{
	if (!p || p->pid <= 0)
		return -1;
	int status = 0, result = -1;
	kill(p->pid, SIGTERM);
	long long deadline = now_ms() + 5000;
	for (;;) {
		pid_t w = waitpid(p->pid, &status, WNOHANG);
		if (w == p->pid)
			break;
		if (w < 0 && errno != EINTR)
			goto out;
		if (now_ms() > deadline) {
			kill(p->pid, SIGKILL);
			if (waitpid(p->pid, &status, 0) != p->pid)
				goto out;
			break;
		}
		usleep(10000);
	}
	result = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
out:
	p->pid = 0;
	if (p->out_fd >= 0)
		close(p->out_fd);
	p->out_fd = -1;
	return result;
}

/* Waits for fd to be ready for events until deadline; returns 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0)
			return 0;
		struct pollfd pfd = { .fd = fd, .events = events };
		int r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		return r < 0 ? -1 : r > 0;
	}
}

int sim_http_request(int port, const char *method, const char *path, const char *body, int timeout_ms,
		     struct sim_http_resp *out, struct cn_err *err)
{
	int fd = -1, rc = 0;
	char *buf = NULL, req[2048];
	size_t len = 0, cap = 0;
	long long deadline = now_ms() + timeout_ms;
	size_t blen = body ? strlen(body) : 0;

	int n = snprintf(req, sizeof req,
			 "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
			 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
			 method, path, port, blen);
	if (n < 0 || (size_t)n >= sizeof req)
		return cn_fail(err, CN_EUNAVAIL, "request line for '%s' too long", path);

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = cn_fail(err, CN_EUNAVAIL, "socket: %s", strerror(errno));
		goto out;
	}
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		rc = cn_fail(err, CN_EUNAVAIL, "connect to 127.0.0.1:%d: %s", port, strerror(errno));
		goto out;
	}
	/* small requests: blocking sends are fine on loopback */
	const char *parts[2] = { req, body };
	size_t plen[2] = { (size_t)n, blen };
	for (int i = 0; i < 2; i++) {
		size_t off = 0;
		while (off < plen[i]) {
			ssize_t w = send(fd, parts[i] + off, plen[i] - off, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				rc = cn_fail(err, CN_EUNAVAIL, "send to 127.0.0.1:%d: %s", port, strerror(errno));
				goto out;
			}
			off += (size_t)w;
		}
	}
	for (;;) {
		if (len + 4096 + 1 > cap) {
			if (cap >= HTTP_MAX) {
				rc = cn_fail(err, CN_EUNAVAIL, "answer from 127.0.0.1:%d%s exceeds %u bytes", port, path,
					     HTTP_MAX);
				goto out;
			}
			size_t ncap = cap ? cap * 2 : 16384;
			char *nb = realloc(buf, ncap);
			if (!nb) {
				rc = cn_fail(err, CN_EUNAVAIL, "out of memory reading an answer");
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		int wr = wait_fd(fd, POLLIN, deadline);
		if (wr <= 0) {
			rc = cn_fail(err, CN_EUNAVAIL, "no full answer from 127.0.0.1:%d%s within %d ms", port, path,
				     timeout_ms);
			goto out;
		}
		ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = cn_fail(err, CN_EUNAVAIL, "recv from 127.0.0.1:%d: %s", port, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	char *hend = strstr(buf, "\r\n\r\n");
	int status = 0;
	if (!hend || sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
		rc = cn_fail(err, CN_EUNAVAIL, "answer from 127.0.0.1:%d%s is not http", port, path);
		goto out;
	}
	memset(out, 0, sizeof *out);
	out->status = status;
	size_t hlen = (size_t)(hend - buf) + 2;
	if (hlen >= sizeof out->headers)
		hlen = sizeof out->headers - 1;
	memcpy(out->headers, buf, hlen);
	out->headers[hlen] = '\0';
	out->body_len = len - (size_t)(hend + 4 - buf);
	memmove(buf, hend + 4, out->body_len + 1);
	out->body = buf;
	buf = NULL;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

int sim_http_header(const struct sim_http_resp *r, const char *name, char *buf, size_t size)
{
	size_t nl = strlen(name);
	const char *p = strstr(r->headers, "\r\n");
	while (p) {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1, *e = strstr(v, "\r\n");
			while (*v == ' ' || *v == '\t')
				v++;
			size_t vl = e ? (size_t)(e - v) : strlen(v);
			if (vl >= size)
				vl = size - 1;
			memcpy(buf, v, vl);
			buf[vl] = '\0';
			return 0;
		}
		p = strstr(p, "\r\n");
	}
	return -1;
}

void sim_http_free(struct sim_http_resp *r)
{
	if (r) {
		free(r->body);
		r->body = NULL;
		r->body_len = 0;
	}
}

int sim_prom_value(const char *page, const char *series, double *out)
{
	size_t sl = strlen(series);
	const char *p = page;
	while (p && *p) {
		if (*p != '#' && strncmp(p, series, sl) == 0 && p[sl] == ' ') {
			char *end = NULL;
			double v = strtod(p + sl + 1, &end);
			if (end == p + sl + 1)
				return -1;
			*out = v;
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}
