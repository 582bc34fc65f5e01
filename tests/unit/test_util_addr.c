/* Table-driven tests of the socket address parser (canary/addr.h) that the service loader, the HAProxy transport and
 * canaryd's --listen share: the forms, their parts, and each refusal in words. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "canary/addr.h"

#define U CN_ADDR_UNIX
#define Z CN_ADDR_PORT_ZERO

struct addr_case {
	const char *in;
	unsigned flags;
	const char *path;    /* expected unix path, or NULL for host:port */
	const char *host;    /* expected host and port when path is NULL */
	const char *port;
	const char *errpart; /* NULL: must succeed; else a part of the message */
};

static const struct addr_case cases[] = {
	{ "unix:/run/haproxy/admin.sock", U, "/run/haproxy/admin.sock", NULL, NULL, NULL },
	{ "/run/haproxy/admin.sock", U, "/run/haproxy/admin.sock", NULL, NULL, NULL },
	{ "127.0.0.1:9999", U, NULL, "127.0.0.1", "9999", NULL },
	{ "localhost:1", U, NULL, "localhost", "1", NULL },
	{ "[::1]:65535", U, NULL, "::1", "65535", NULL },
	{ "[fe80::1%eth0]:80", 0, NULL, "fe80::1%eth0", "80", NULL },
	{ "127.0.0.1:0", Z, NULL, "127.0.0.1", "0", NULL },
	{ "127.0.0.1:080", 0, NULL, "127.0.0.1", "80", NULL },
	{ "127.0.0.1:99999", U, NULL, NULL, NULL, "runtime_api '127.0.0.1:99999' has an invalid port '99999'; use 1..65535" },
	{ "127.0.0.1:0", U, NULL, NULL, NULL, "invalid port '0'" },
	{ "127.0.0.1:", Z, NULL, NULL, NULL, "invalid port ''; use 0..65535" },
	{ "localhost:http", U, NULL, NULL, NULL, "invalid port 'http'" },
	{ "localhost:-1", U, NULL, NULL, NULL, "invalid port '-1'" },
	{ "localhost:+80", U, NULL, NULL, NULL, "invalid port '+80'" },
	{ "localhost:655350", U, NULL, NULL, NULL, "invalid port '655350'" },
	{ "localhost", U, NULL, NULL, NULL, "'localhost' must be unix:/PATH, /PATH or HOST:PORT" },
	{ "localhost", 0, NULL, NULL, NULL, "'localhost' must be HOST:PORT" },
	{ "", U, NULL, NULL, NULL, "must be unix:/PATH, /PATH or HOST:PORT" },
	{ ":9999", U, NULL, NULL, NULL, "must be unix:/PATH, /PATH or HOST:PORT" },
	{ "unix:admin.sock", U, NULL, NULL, NULL, "the unix socket path in 'unix:admin.sock' must be absolute" },
	{ "unix:/run/a.sock", 0, NULL, NULL, NULL, "invalid port '/run/a.sock'" },
	{ "/run/a.sock", 0, NULL, NULL, NULL, "must be HOST:PORT" },
	{ "::1:80", U, NULL, NULL, NULL, "invalid host" },
	{ "[::1:80", U, NULL, NULL, NULL, "write an IPv6 address as [ADDR]:PORT" },
	{ "[]:80", U, NULL, NULL, NULL, "write an IPv6 address as [ADDR]:PORT" },
	{ "a b:80", U, NULL, NULL, NULL, "invalid host" },
	{ "a/b:80", U, NULL, NULL, NULL, "invalid host" },
};

static void test_forms(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct addr_case *c = &cases[i];
		struct cn_err err = { 0 };
		struct cn_addr a;
		memset(&a, 0x5a, sizeof a);
		int rc = cn_addr_parse(c->in, "runtime_api", c->flags, &a, &err);
		if (c->errpart) {
			if (rc == 0)
				fail_msg("'%s': accepted, want an error with '%s'", c->in, c->errpart);
			assert_int_equal(rc, -CN_EINPUT);
			assert_int_equal(err.code, CN_EINPUT);
			if (!strstr(err.msg, c->errpart))
				fail_msg("'%s': message '%s' lacks '%s'", c->in, err.msg, c->errpart);
			assert_int_equal(((unsigned char *)&a)[0], 0x5a); /* untouched on failure */
			continue;
		}
		if (rc != 0)
			fail_msg("'%s': unexpected error: %s", c->in, err.msg);
		assert_string_equal(a.text, c->in);
		assert_int_equal(a.is_unix, c->path != NULL);
		if (c->path) {
			assert_string_equal(a.path, c->path);
		} else {
			assert_string_equal(a.host, c->host);
			assert_string_equal(a.port, c->port);
			assert_int_equal(a.port_num, (uint16_t)strtol(c->port, NULL, 10));
		}
	}
}

/* The limits: the unix path (sun_path less its NUL), the host, and the text as written. */
static void test_lengths(void **state)
{
	(void)state;
	char s[CN_ADDR_TEXT_MAX + 8];
	struct cn_addr a;
	struct cn_err err = { 0 };
	size_t pmax = sizeof a.path - 1;

	memcpy(s, "unix:/", 6);
	memset(s + 6, 'p', pmax - 1);
	s[5 + pmax] = '\0'; /* a path of exactly pmax bytes */
	assert_int_equal(cn_addr_parse(s, "runtime_api", U, &a, &err), 0);
	assert_int_equal(strlen(a.path), pmax);
	memcpy(s + 5 + pmax, "p", 2); /* one more */
	assert_int_equal(cn_addr_parse(s, "runtime_api", U, &a, &err), -CN_EINPUT);
	assert_non_null(strstr(err.msg, "is too long (at most 107 bytes)"));

	memset(s, 'h', 256);
	memcpy(s + 256, ":80", 4);
	assert_int_equal(cn_addr_parse(s, "--listen", 0, &a, &err), -CN_EINPUT);
	assert_non_null(strstr(err.msg, "has a host longer than 255 bytes"));
	memcpy(s + 255, ":80", 4);
	assert_int_equal(cn_addr_parse(s, "--listen", 0, &a, &err), 0);

	memset(s, 'h', CN_ADDR_TEXT_MAX);
	s[CN_ADDR_TEXT_MAX] = '\0';
	assert_int_equal(cn_addr_parse(s, "--listen", 0, &a, &err), -CN_EINPUT);
	assert_non_null(strstr(err.msg, "--listen 'hhhh"));
	assert_non_null(strstr(err.msg, "is too long"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_lengths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
