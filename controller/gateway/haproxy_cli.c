/* HAProxy runtime API transport: one command per connection (non-interactive mode), over a unix socket or TCP,
 * every step bounded by one deadline so that a gateway that accepts and never answers cannot hang the caller. */
#include "gateway_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "canary/bug.h"
#include "canary/clock.h"
#include "canary/dynbuf.h"

char *cn_hap_quote(const char *text, char *buf, size_t bufsz)
{
	if (bufsz == 0)
		return buf;
	size_t n = 0, len = strlen(text);
	int truncated = 0;
	for (size_t i = 0; i < len; i++) {
		if (n + 1 >= bufsz) {
			truncated = 1;
			break;
		}
		unsigned char c = (unsigned char)text[i];
		buf[n++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	while (n > 0 && buf[n - 1] == ' ')
		n--;
	buf[n] = '\0';
	if (truncated && bufsz > 4) {
		size_t at = n > bufsz - 4 ? bufsz - 4 : n;
		memcpy(buf + at, "...", 4);
	}
	return buf;
}

/* Waits until fd is ready for events or the deadline passes; returns 0, or -1 with errno (ETIMEDOUT on timeout). */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - cn_mono_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		struct pollfd p = { .fd = fd, .events = events };
		int rc = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (rc > 0)
			return 0;
		if (rc == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (errno != EINTR)
			return -1;
	}
}

/* Connects fd (non-blocking) to sa before the deadline; returns 0 or -1 with errno. */
static int connect_by(int fd, const struct sockaddr *sa, socklen_t salen, int64_t deadline)
{
	if (connect(fd, sa, salen) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EAGAIN && errno != EINTR)
		return -1;
	if (wait_fd(fd, POLLOUT, deadline) < 0)
		return -1;
	int soerr = 0;
	socklen_t len = sizeof soerr;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return -1;
	if (soerr) {
		errno = soerr;
		return -1;
	}
	return 0;
}

/* Opens a connected non-blocking socket to a; returns the fd or -1 with errno (EHOSTUNREACH-like for lookups). */
static int open_conn(const struct cn_addr *a, int64_t deadline, int *gai_rc)
{
	*gai_rc = 0;
	if (a->is_unix) {
		struct sockaddr_un sun;
		memset(&sun, 0, sizeof sun);
		sun.sun_family = AF_UNIX;
		memcpy(sun.sun_path, a->path, strlen(a->path) + 1);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		if (connect_by(fd, (struct sockaddr *)&sun, sizeof sun, deadline) < 0) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		return fd;
	}

	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(a->host, a->port, &hints, &res);
	if (rc != 0) {
		*gai_rc = rc;
		return -1;
	}
	int fd = -1, e = ECONNREFUSED;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		if (connect_by(fd, ai->ai_addr, ai->ai_addrlen, deadline) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
		if (e == ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (fd < 0)
		errno = e;
	return fd;
}

int cn_hap_cmd_buf(const struct cn_addr *a, const char *cmd, int64_t timeout_ms, struct cn_dynbuf *out,
		   struct cn_err *err)
{
	int fd = -1, rc = 0, gai_rc = 0;
	char line[512];
	int64_t start = cn_mono_ms();
	int64_t deadline = start + (timeout_ms > 0 ? timeout_ms : 1);

	int len = snprintf(line, sizeof line, "%s\n", cmd);
	cn_dynbuf_reset(out);
	if (len < 0 || (size_t)len >= sizeof line) {
		rc = cn_fail(err, CN_EINTERNAL, "haproxy command '%.64s...' is too long", cmd);
		goto out;
	}

	fd = open_conn(a, deadline, &gai_rc);
	if (fd < 0) {
		if (gai_rc)
			rc = cn_fail(err, CN_EUNAVAIL, "cannot resolve haproxy runtime api '%s': %s; check the service's "
				     "gateway.runtime_api", a->text, gai_strerror(gai_rc));
		else if (errno == ETIMEDOUT)
			rc = cn_fail(err, CN_EUNAVAIL, "cannot connect to haproxy runtime api '%s' within %lld ms; check "
				     "that haproxy runs and listens there", a->text, (long long)timeout_ms);
		else
			rc = cn_fail(err, CN_EUNAVAIL, "cannot connect to haproxy runtime api '%s': %s; check that "
				     "haproxy runs and its 'stats socket' line", a->text, strerror(errno));
		goto out;
	}

	for (size_t off = 0; off < (size_t)len;) {
		ssize_t w = send(fd, line + off, (size_t)len - off, MSG_NOSIGNAL);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_fd(fd, POLLOUT, deadline) == 0)
			continue;
		goto io_fail;
	}

	for (;;) {
		if (wait_fd(fd, POLLIN, deadline) < 0)
			goto io_fail;
		char buf[4096];
		ssize_t r = recv(fd, buf, sizeof buf, 0);
		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			goto io_fail;
		}
		int arc = cn_dynbuf_add(out, buf, (size_t)r);
		if (arc == -CN_EINPUT) {
			rc = cn_fail(err, CN_EINTERNAL, "haproxy runtime api '%s' answered more than %zu bytes to '%s'; "
				     "is it really haproxy's stats socket?", a->text, out->max, cmd);
			goto out;
		}
		if (arc < 0) {
			rc = cn_fail(err, CN_EINTERNAL, "out of memory reading haproxy's answer to '%s'", cmd);
			goto out;
		}
	}
	goto out;

io_fail:
	if (errno == ETIMEDOUT)
		rc = cn_fail(err, CN_EUNAVAIL, "haproxy runtime api '%s' did not answer '%s' within %lld ms; check that "
			     "it is haproxy's stats socket and haproxy is not stuck", a->text, cmd, (long long)timeout_ms);
	else
		rc = cn_fail(err, CN_EUNAVAIL, "haproxy runtime api '%s' failed during '%s': %s", a->text, cmd,
			     strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

int cn_hap_cmd(const struct cn_addr *a, const char *cmd, int64_t timeout_ms, char *out, size_t outsz,
	       struct cn_err *err)
{
	CN_BUG_ON(!out || outsz == 0);
	struct cn_dynbuf b;
	cn_dynbuf_init(&b, outsz - 1);
	int rc = cn_hap_cmd_buf(a, cmd, timeout_ms, &b, err);
	memcpy(out, cn_dynbuf_ptr(&b), cn_dynbuf_len(&b) + 1);
	cn_dynbuf_free(&b);
	if (rc < 0)
		out[0] = '\0';
	return rc;
}
