/* Table-driven tests of the bounded whole-file reader (canary/file.h) that the YAML loaders, the migrations and the
 * nginx gateway share: sizes around the cap, NUL bytes kept, the refusals in words (missing file, a directory, too
 * large), and a missing file allowed (CN_FILE_MISSING_OK, as the nginx gateway reads its include). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "canary/file.h"

#define MAX 10000 /* more than the reader's chunk, so a file at the cap takes several reads */

struct file_case {
	const char *what;
	size_t size;         /* bytes written to a temporary file (byte i is 'a' + i % 26, or 0 at i == 5 with nul) */
	int nul;
	size_t max;
	const char *errpart; /* NULL: must succeed and give the bytes back; else a part of the message */
};

static const struct file_case cases[] = {
	{ "empty", 0, 0, MAX, NULL },
	{ "one byte", 1, 0, MAX, NULL },
	{ "at the cap", MAX, 0, MAX, NULL },
	{ "a NUL byte is kept", 100, 1, MAX, NULL },
	{ "one over the cap", MAX + 1, 0, MAX, "file is too large (more than 10000 bytes)" },
	{ "far over the cap", 5 * MAX, 0, MAX, "file is too large (more than 10000 bytes)" },
	{ "small cap", 2, 0, 1, "file is too large (more than 1 bytes)" },
};

static void test_sizes(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct file_case *c = &cases[i];
		char path[] = "/tmp/canary-test-file.XXXXXX";
		int fd = mkstemp(path);
		assert_true(fd >= 0);
		char *want = malloc(c->size + 1);
		assert_non_null(want);
		for (size_t k = 0; k < c->size; k++)
			want[k] = (c->nul && k == 5) ? '\0' : (char)('a' + k % 26);
		assert_int_equal(write(fd, want, c->size), (ssize_t)c->size);
		close(fd);

		struct cn_err err = { 0 };
		char *text = (char *)"untouched";
		size_t len = 12345;
		int rc = cn_file_read(path, c->max, 0, &text, &len, &err);
		unlink(path);
		if (c->errpart) {
			if (rc == 0)
				fail_msg("%s: accepted, want an error with '%s'", c->what, c->errpart);
			assert_int_equal(rc, -CN_EINPUT);
			if (!strstr(err.msg, c->errpart) || strncmp(err.msg, path, strlen(path)) != 0)
				fail_msg("%s: message '%s' lacks '%s: ...%s'", c->what, err.msg, path, c->errpart);
			assert_string_equal(text, "untouched"); /* outputs written only on success */
			assert_int_equal(len, 12345);
		} else {
			if (rc != 0)
				fail_msg("%s: unexpected error: %s", c->what, err.msg);
			assert_int_equal(len, c->size);
			assert_memory_equal(text, want, c->size);
			assert_int_equal(text[len], '\0');
			free(text);
		}
		free(want);
	}
}

static void test_refusals(void **state)
{
	(void)state;
	static const struct {
		const char *path;
		unsigned flags;
		int rc;
		const char *errpart; /* NULL: no message (a missing file allowed) */
	} bad[] = {
		{ "/nonexistent/x.yaml", 0, -CN_EINPUT, "/nonexistent/x.yaml: cannot open: No such file or directory" },
		{ "/nonexistent/x.yaml", CN_FILE_MISSING_OK, 1, NULL },
		{ "/tmp", 0, -CN_EINPUT, "/tmp: cannot read: Is a directory" },
		{ "/tmp", CN_FILE_MISSING_OK, -CN_EINPUT, "/tmp: cannot read: Is a directory" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct cn_err err = { 0 };
		char *text = NULL;
		size_t len = 12345;
		assert_int_equal(cn_file_read(bad[i].path, MAX, bad[i].flags, &text, &len, &err), bad[i].rc);
		if (bad[i].errpart && !strstr(err.msg, bad[i].errpart))
			fail_msg("'%s': message '%s' lacks '%s'", bad[i].path, err.msg, bad[i].errpart);
		if (!bad[i].errpart)
			assert_int_equal(err.code, 0);
		assert_null(text);
		assert_int_equal(len, 12345);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
