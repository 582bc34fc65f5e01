/* Table-driven tests of cn_yaml_load_file, the read-then-parse step both loaders (policy, service) share: what the
 * parser is handed, when the source is given back, and that a failed read or parse leaves the outputs alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "canary/yaml.h"

struct seen {
	int calls;
	char origin[256];
	char text[64];
	size_t len;
};

/* Records what it was handed into out; fails when the text starts with "bad". */
static int fake_parse(const char *text, size_t len, const char *origin, void *out, struct cn_err *err)
{
	struct seen *s = out;
	s->calls++;
	snprintf(s->origin, sizeof s->origin, "%s", origin);
	snprintf(s->text, sizeof s->text, "%s", text);
	s->len = len;
	if (strncmp(text, "bad", 3) == 0)
		return cn_fail(err, CN_EINPUT, "%s:1:1: bad document", origin);
	return 0;
}

struct load_case {
	const char *what;
	const char *content; /* NULL: no such file */
	bool want_source;
	int rc;
	int calls;           /* times the parser ran */
	const char *errpart;
};

static const struct load_case cases[] = {
	{ "parsed, source given back", "name: chat\n", true, 0, 1, NULL },
	{ "parsed, no source asked for", "name: chat\n", false, 0, 1, NULL },
	{ "empty file", "", true, 0, 1, NULL },
	{ "parser refuses", "bad: yes\n", true, -CN_EINPUT, 1, ":1:1: bad document" },
	{ "no such file", NULL, true, -CN_EINPUT, 0, ": cannot open: No such file or directory" },
};

static void test_load(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct load_case *c = &cases[i];
		char path[] = "/tmp/canary-test-yaml.XXXXXX";
		int fd = mkstemp(path);
		assert_true(fd >= 0);
		if (c->content)
			assert_int_equal(write(fd, c->content, strlen(c->content)), (ssize_t)strlen(c->content));
		close(fd);
		if (!c->content)
			unlink(path);

		struct seen s = { 0 };
		struct cn_err err = { 0 };
		char *source = (char *)"untouched";
		int rc = cn_yaml_load_file(path, fake_parse, &s, c->want_source ? &source : NULL, &err);
		if (c->content)
			unlink(path);
		if (rc != c->rc)
			fail_msg("%s: rc %d, want %d (%s)", c->what, rc, c->rc, err.msg);
		assert_int_equal(s.calls, c->calls);
		if (c->calls) {
			assert_string_equal(s.origin, path); /* messages name the file */
			assert_string_equal(s.text, c->content);
			assert_int_equal(s.len, strlen(c->content));
		}
		if (c->errpart) {
			if (!strstr(err.msg, c->errpart) || strncmp(err.msg, path, strlen(path)) != 0)
				fail_msg("%s: message '%s' lacks '%s...%s'", c->what, err.msg, path, c->errpart);
			assert_string_equal(source, "untouched");
		} else if (c->want_source) {
			assert_string_equal(source, c->content);
			free(source);
		} else {
			assert_string_equal(source, "untouched");
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
