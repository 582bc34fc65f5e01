/* Test-only fault injection (CANARY_TEST_CRASH_AT=POINT[:NTH]): canaryd kills itself with SIGKILL at a named point
 * of a turn, so the e2e test and bench/crash_soak.sh can prove that a kill -9 anywhere leaves nothing inconsistent.
 * Unset, every point is one test of fault_armed and nothing else runs.
 *
 * mid_record is special: the point sits right before the daemon calls cn_store_record, but the kill must happen
 * inside the record's transaction, after its writes and before its commit, and the store is a library the daemon
 * does not reach into. So, only while that point is due, this file interposes on libpq's PQexecParams and
 * PQexecPrepared (the store prepares the statements it runs with parameters; the
 * executable's definition wins over the shared library's for every caller linked into canaryd, and calls through
 * to the real one): a record written as BEGIN … COMMIT is killed when it sends COMMIT; a record written as one
 * statement is run inside a BEGIN of ours and killed before anyone commits it. Either way the server holds the
 * record's writes uncommitted when the client dies, and must throw them away. */
#define _GNU_SOURCE
#include "daemon_fault_int.h"

#include <dlfcn.h>
#include <errno.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon_int.h"

bool fault_armed;

static const char *const points[] = {"after_claim", "after_intent", "after_gateway", "before_confirm",
				     "mid_record", "command"};

static char armed_point[32];
static long armed_nth = 1, passes;
static bool kill_in_record; /* mid_record is due: the next record transaction dies before its commit */

int fault_init(void)
{
	const char *v = getenv("CANARY_TEST_CRASH_AT");
	if (!v || !*v)
		return 0;
	const char *colon = strchr(v, ':');
	size_t n = colon ? (size_t)(colon - v) : strlen(v);
	bool known = false;
	for (size_t i = 0; i < sizeof points / sizeof points[0]; i++)
		known |= strlen(points[i]) == n && strncmp(points[i], v, n) == 0;
	if (!known || n >= sizeof armed_point) {
		fprintf(stderr, "canaryd: CANARY_TEST_CRASH_AT='%s' names no crash point; use one of after_claim, "
				"after_intent, after_gateway, before_confirm, mid_record, command, optionally ':NTH'\n",
			v);
		return -1;
	}
	if (colon) {
		char *end = NULL;
		errno = 0;
		armed_nth = strtol(colon + 1, &end, 10);
		if (errno || !end || *end || armed_nth < 1 || armed_nth > 1000000) {
			fprintf(stderr, "canaryd: CANARY_TEST_CRASH_AT='%s': NTH must be a whole number in 1..1000000\n",
				v);
			return -1;
		}
	}
	memcpy(armed_point, v, n);
	armed_point[n] = '\0';
	fault_armed = true;
	dlog("warn", "fault.armed", dstr("point", armed_point), dint("nth", armed_nth));
	return 0;
}

static void crash(const char *where)
{
	dlog("warn", "fault.crash", dstr("point", armed_point), dint("nth", armed_nth), dstr("where", where));
	raise(SIGKILL);
}

void fault_point(const char *name)
{
	if (strcmp(name, armed_point) != 0 || ++passes != armed_nth)
		return;
	if (strcmp(name, "mid_record") == 0) {
		kill_in_record = true;
		return;
	}
	crash(name);
}

typedef PGresult *(*exec_params_fn)(PGconn *, const char *, int, const Oid *, const char *const *, const int *,
				     const int *, int);

static bool sql_is(const char *sql, const char *word)
{
	sql += strspn(sql, " \t\n");
	size_t n = strlen(word);
	return strncasecmp(sql, word, n) == 0 && (sql[n] == '\0' || strchr(" \t\n;", sql[n]));
}

PGresult *PQexecParams(PGconn *conn, const char *command, int nparams, const Oid *types, const char *const *values,
		       const int *lengths, const int *formats, int result_format)
{
	static exec_params_fn real;
	if (!real) {
		real = (exec_params_fn)dlsym(RTLD_NEXT, "PQexecParams");
		if (!real) {
			fprintf(stderr, "canaryd: cannot find libpq's PQexecParams: %s\n", dlerror());
			abort();
		}
	}
	if (!kill_in_record)
		return real(conn, command, nparams, types, values, lengths, formats, result_format);
	if (sql_is(command, "COMMIT"))
		crash("mid_record: inside the record transaction, before COMMIT");
	if (PQtransactionStatus(conn) == PQTRANS_IDLE && !sql_is(command, "BEGIN")) {
		PQclear(real(conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0));
		PQclear(real(conn, command, nparams, types, values, lengths, formats, result_format));
		crash("mid_record: the record statement ran in an open transaction, not committed");
	}
	return real(conn, command, nparams, types, values, lengths, formats, result_format);
}

typedef PGresult *(*exec_prepared_fn)(PGconn *, const char *, int, const char *const *, const int *, const int *,
				       int);

PGresult *PQexecPrepared(PGconn *conn, const char *name, int nparams, const char *const *values, const int *lengths,
			 const int *formats, int result_format)
{
	static exec_prepared_fn real;
	if (!real) {
		real = (exec_prepared_fn)dlsym(RTLD_NEXT, "PQexecPrepared");
		if (!real) {
			fprintf(stderr, "canaryd: cannot find libpq's PQexecPrepared: %s\n", dlerror());
			abort();
		}
	}
	if (kill_in_record && PQtransactionStatus(conn) == PQTRANS_IDLE) {
		PQclear(PQexecParams(conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0));
		PQclear(real(conn, name, nparams, values, lengths, formats, result_format));
		crash("mid_record: the record statement ran in an open transaction, not committed");
	}
	return real(conn, name, nparams, values, lengths, formats, result_format);
}
