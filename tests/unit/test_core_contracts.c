/* Unit: the core's contracts are checked in every build (canary/bug.h): breaking one ends the process with
 * "canary: BUG at ..." and SIGABRT instead of computing on bad input. Each case runs in a child process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "canary/rollout.h"

static struct cn_policy policy;
static struct cn_tick_result res;

static void tick_aliased(void) { cn_tick(&policy, &res.next, NULL, 1000, &res); }

static void tick_too_many_slos(void)
{
	struct cn_rollout_state st;
	cn_rollout_init(&st);
	policy.nslos = CN_MAX_SLOS + 1;
	cn_tick(&policy, &st, NULL, 1000, &res);
}

static void command_aliased(void)
{
	struct cn_err err = {0};
	cn_command(&policy, &res.next, CN_CMD_PAUSE, 1000, &res, &err);
}

static void tick_fine(void)
{
	struct cn_rollout_state st;
	cn_rollout_init(&st);
	cn_tick(&policy, &st, NULL, 1000, &res);
}

/* Runs fn in a child with stderr on a pipe; returns the wait status and the first bytes of stderr in buf. */
static int run(void (*fn)(void), char *buf, size_t size)
{
	int fd[2], status = 0;
	assert_int_equal(pipe(fd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fd[1], 2);
		signal(SIGABRT, SIG_DFL);
		fn();
		_exit(0);
	}
	close(fd[1]);
	size_t n = 0;
	ssize_t k;
	while (n + 1 < size && (k = read(fd[0], buf + n, size - 1 - n)) > 0)
		n += (size_t)k;
	buf[n] = '\0';
	close(fd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void test_broken_contracts_abort(void **state)
{
	(void)state;
	static const struct {
		void (*fn)(void);
		const char *cond;
	} cases[] = {
		{tick_aliased, "overlaps(cur, out)"},
		{command_aliased, "overlaps(cur, out)"},
		{tick_too_many_slos, "p->nslos > CN_MAX_SLOS"},
	};
	char buf[512];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int st = run(cases[i].fn, buf, sizeof buf);
		assert_true(WIFSIGNALED(st));
		assert_int_equal(WTERMSIG(st), SIGABRT);
		assert_non_null(strstr(buf, "canary: BUG at "));
		assert_non_null(strstr(buf, "controller/core/rollout.c:"));
		assert_non_null(strstr(buf, cases[i].cond));
	}
}

static void test_kept_contract_runs(void **state)
{
	(void)state;
	char buf[512];
	int st = run(tick_fine, buf, sizeof buf);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_string_equal(buf, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_broken_contracts_abort),
		cmocka_unit_test(test_kept_contract_runs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
