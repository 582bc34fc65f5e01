/* The canaryctl binary as a test runs it: fork, exec with captured stdout/stderr, a bounded wait. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl_run.h"

void ctl_slurp(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "rb");
	size_t n = f ? fread(buf, 1, len - 1, f) : 0;
	buf[n] = '\0';
	if (f)
		fclose(f);
}

void ctl_run(struct run *r, const char *db, const char *const *args)
{
	char outp[] = "/tmp/canaryctl-out.XXXXXX", errp[] = "/tmp/canaryctl-err.XXXXXX";
	char prog[1024];
	char *argv[32];
	int n = 0, fo = mkstemp(outp), fe = mkstemp(errp);
	assert_true(fo >= 0 && fe >= 0);
	snprintf(prog, sizeof prog, "%s/canaryctl", getenv("CANARY_BINARY_DIR"));
	argv[n++] = prog;
	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fo, 1);
		dup2(fe, 2);
		if (db)
			setenv("DATABASE_URL", db, 1);
		else
			unsetenv("DATABASE_URL");
		execv(argv[0], argv);
		_exit(127);
	}
	int st = 0;
	for (int i = 0; i < 600; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			break;
		if (i == 599) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			fail_msg("canaryctl did not finish within 60 s");
		}
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	ctl_slurp(outp, r->out, sizeof r->out);
	ctl_slurp(errp, r->err, sizeof r->err);
	close(fo);
	close(fe);
	unlink(outp);
	unlink(errp);
}
