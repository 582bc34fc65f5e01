/* The one parser of socket addresses (canary/addr.h): the service loader's check, the HAProxy transport's connect
 * and canaryd's --listen all read "unix:/PATH", "/PATH", "HOST:PORT" and "[V6]:PORT" through it. */
#include "canary/addr.h"

#include <stdio.h>
#include <string.h>

int cn_addr_parse(const char *s, const char *what, unsigned flags, struct cn_addr *out, struct cn_err *err)
{
	const char *forms = (flags & CN_ADDR_UNIX) ? "unix:/PATH, /PATH or HOST:PORT" : "HOST:PORT";
	struct cn_addr r;
	memset(&r, 0, sizeof r);
	if (!s)
		s = "";
	if (strlen(s) >= sizeof r.text)
		return cn_fail(err, CN_EINPUT, "%s '%.64s...' is too long (at most %zu bytes)", what, s,
			       sizeof r.text - 1);
	snprintf(r.text, sizeof r.text, "%s", s);

	const char *path = NULL;
	if (flags & CN_ADDR_UNIX) {
		if (strncmp(s, "unix:", 5) == 0)
			path = s + 5;
		else if (s[0] == '/')
			path = s;
	}
	if (path) {
		if (path[0] != '/')
			return cn_fail(err, CN_EINPUT, "the unix socket path in '%s' must be absolute, e.g. "
				       "'unix:/run/haproxy/admin.sock'", s);
		if (strlen(path) >= sizeof r.path)
			return cn_fail(err, CN_EINPUT, "the unix socket path in '%s' is too long (at most %zu bytes)", s,
				       sizeof r.path - 1);
		r.is_unix = true;
		snprintf(r.path, sizeof r.path, "%s", path);
		*out = r;
		return 0;
	}

	const char *colon = strrchr(s, ':');
	if (!colon || colon == s)
		return cn_fail(err, CN_EINPUT, "%s '%s' must be %s (e.g. '127.0.0.1:9999')", what, s, forms);
	const char *host = s, *host_end = colon;
	if (s[0] == '[') {
		if (colon[-1] != ']' || colon - s < 3)
			return cn_fail(err, CN_EINPUT, "%s '%s': write an IPv6 address as [ADDR]:PORT", what, s);
		host = s + 1;
		host_end = colon - 1;
	}
	for (const char *p = host; p < host_end; p++)
		if (*p <= ' ' || *p == 0x7f || *p == '/' || *p == '[' || *p == ']' || (*p == ':' && s[0] != '['))
			return cn_fail(err, CN_EINPUT, "%s '%s' has an invalid host; write HOST:PORT (e.g. "
				       "'127.0.0.1:9999')", what, s);
	if ((size_t)(host_end - host) >= sizeof r.host)
		return cn_fail(err, CN_EINPUT, "%s '%s' has a host longer than %zu bytes", what, s, sizeof r.host - 1);

	const char *ps = colon + 1;
	long port = (*ps && strlen(ps) < sizeof r.port) ? 0 : -1;
	for (const char *p = ps; *p && port >= 0; p++)
		port = (*p >= '0' && *p <= '9') ? port * 10 + (*p - '0') : -1;
	long lo = (flags & CN_ADDR_PORT_ZERO) ? 0 : 1;
	if (port < lo || port > 65535)
		return cn_fail(err, CN_EINPUT, "%s '%s' has an invalid port '%s'; use %ld..65535", what, s, ps, lo);
	memcpy(r.host, host, (size_t)(host_end - host));
	snprintf(r.port, sizeof r.port, "%ld", port);
	r.port_num = (uint16_t)port;
	*out = r;
	return 0;
}
