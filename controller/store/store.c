/* Store connection: connect with a clear error, run parameterised statements, map SQLSTATEs to our error codes. */
#include "store_int.h"

#include <errno.h>
#include <stdint.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/bug.h"

/* Statements with parameters are prepared once per connection and then only executed: Postgres skips parsing and
 * planning the call (the daemon runs the same few statements tens of thousands of times an hour). The cache is
 * keyed by the statement's text; past PREPARED_MAX statements the rest run unprepared. */
#define PREPARED_MAX 64

struct prepared {
	uint64_t hash;
	char *sql; /* owned copy */
};

struct cn_store {
	PGconn *conn;
	char user[CN_NAME_MAX];
	struct prepared prep[PREPARED_MAX];
	int nprep;
	unsigned long long round_trips; /* statements sent (a PREPARE counts as one) */
};

/* Library code never prints: drop the server's NOTICEs (e.g. "relation already exists, skipping"). */
static void quiet_notices(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* Copies the first non-empty line of a libpq message, without trailing blanks and punctuation noise. */
static void first_line(const char *msg, char *out, size_t len)
{
	if (!msg)
		msg = "";
	while (*msg == '\n' || *msg == ' ' || *msg == '\t')
		msg++;
	size_t n = strcspn(msg, "\n");
	if (n >= len)
		n = len - 1;
	memcpy(out, msg, n);
	out[n] = '\0';
	while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\t' || out[n - 1] == '\r'))
		out[--n] = '\0';
}

struct cn_store *cn_store_connect(const char *conninfo, struct cn_err *err)
{
	struct cn_store *s = NULL;
	PGconn *conn = NULL;
	char line[300];

	if (!conninfo || !*conninfo)
		conninfo = getenv("DATABASE_URL");
	if (!conninfo)
		conninfo = "";
	/* Our defaults come first so that the user's connection string overrides them. */
	const char *keys[10], *vals[10];
	int n = 0;
	keys[n] = "fallback_application_name";
	vals[n++] = "canary";
	/* A silent network partition must fail a call, not hang it for ever (the daemon's leases run meanwhile):
	 * TCP keepalives and a bound on unacknowledged data. Unix sockets ignore these. */
	static const char *const tcp[][2] = {{"keepalives", "1"}, {"keepalives_idle", "10"},
					      {"keepalives_interval", "5"}, {"keepalives_count", "3"},
					      {"tcp_user_timeout", "30000"}};
	for (size_t i = 0; i < sizeof tcp / sizeof tcp[0]; i++) {
		keys[n] = tcp[i][0];
		vals[n++] = tcp[i][1];
	}
	if (!getenv("PGCONNECT_TIMEOUT")) {
		keys[n] = "connect_timeout";
		vals[n++] = "10";
	}
	keys[n] = "dbname";
	vals[n++] = conninfo;
	keys[n] = NULL;
	vals[n] = NULL;

	conn = PQconnectdbParams(keys, vals, 1);
	if (!conn) {
		cn_fail(err, CN_EUNAVAIL, "cannot connect to the database: out of memory");
		goto out;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		first_line(PQerrorMessage(conn), line, sizeof line);
		cn_fail(err, CN_EUNAVAIL, "cannot connect to the database: %s; check --db or DATABASE_URL", line);
		goto out;
	}
	PQsetNoticeProcessor(conn, quiet_notices, NULL);
	s = calloc(1, sizeof *s);
	if (!s) {
		cn_fail(err, CN_EINTERNAL, "out of memory");
		goto out;
	}
	snprintf(s->user, sizeof s->user, "%s", PQuser(conn) ? PQuser(conn) : "");
	s->conn = conn;
	conn = NULL;
out:
	PQfinish(conn);
	return s;
}

void cn_store_close(struct cn_store *s)
{
	if (!s)
		return;
	PQfinish(s->conn);
	for (int i = 0; i < s->nprep; i++)
		free(s->prep[i].sql);
	free(s);
}

unsigned long long cn_store_round_trips(const struct cn_store *s)
{
	return s ? s->round_trips : 0;
}

PGconn *cn_store_conn(struct cn_store *s)
{
	return s->conn;
}

const char *cn_store_user(const struct cn_store *s)
{
	return s->user;
}

int cn_store_listen(struct cn_store *s, const char *channel, struct cn_err *err)
{
	char sql[160]; /* LISTEN and a quoted identifier of at most 63 bytes, every one a doubled quote */
	/* A channel is an identifier, which LISTEN cannot take as a parameter: quote it with libpq. */
	char *quoted = PQescapeIdentifier(s->conn, channel, strlen(channel));
	if (!quoted)
		return cn_store_fail_result(s, NULL, "listen for notifications", err);
	int n = snprintf(sql, sizeof sql, "LISTEN %s", quoted);
	PQfreemem(quoted);
	if (n < 0 || (size_t)n >= sizeof sql)
		return cn_fail(err, CN_EINTERNAL, "cannot listen on channel '%.40s': the name is too long", channel);
	return cn_store_run(s, "listen for notifications", sql, 0, NULL, err);
}

int cn_store_socket(const struct cn_store *s)
{
	return PQsocket(s->conn);
}

/* Consumes the notifications libpq has read; returns how many. */
static int drain_notifies(PGconn *conn)
{
	PGnotify *n;
	int k = 0;
	while ((n = PQnotifies(conn)) != NULL) {
		PQfreemem(n);
		k++;
	}
	return k;
}

int cn_store_wait_notify(struct cn_store *s, int timeout_ms, struct cn_err *err)
{
	char line[CN_ERR_MSG_MAX];
	int k;
	if (!PQconsumeInput(s->conn))
		goto lost;
	if ((k = drain_notifies(s->conn)) > 0 || timeout_ms == 0)
		return k;
	struct pollfd pfd = {.fd = PQsocket(s->conn), .events = POLLIN};
	if (pfd.fd < 0)
		goto lost;
	int pr = poll(&pfd, 1, timeout_ms);
	if (pr < 0 && errno != EINTR)
		return cn_fail(err, CN_EINTERNAL, "cannot wait for notifications: %s", strerror(errno));
	if (pr <= 0)
		return 0;
	if (!PQconsumeInput(s->conn))
		goto lost;
	return drain_notifies(s->conn);
lost:
	first_line(PQerrorMessage(s->conn), line, sizeof line);
	return cn_fail(err, CN_EUNAVAIL, "the database connection failed while waiting for notifications: %s",
		       line[0] ? line : "connection lost");
}

int cn_store_fail_result(struct cn_store *s, const PGresult *res, const char *what, struct cn_err *err)
{
	char line[CN_ERR_MSG_MAX];
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (primary)
		first_line(primary, line, sizeof line);
	else
		first_line(PQerrorMessage(s->conn), line, sizeof line);
	if (!what)
		what = "do this";

	if (PQstatus(s->conn) != CONNECTION_OK || !state || strncmp(state, "08", 2) == 0 ||
	    strncmp(state, "57P", 3) == 0 || strncmp(state, "53", 2) == 0)
		return cn_fail(err, CN_EUNAVAIL, "the database failed while trying to %s: %s; check that it is up", what,
			       line[0] ? line : "connection lost");
	/* The write functions (migrations/0005) word their refusals for the person at the terminal: pass them on. */
	if (strcmp(state, CN_SQLSTATE_REFUSED) == 0)
		return cn_fail(err, CN_EINPUT, "%s", line);
	if (strcmp(state, CN_SQLSTATE_LEASE) == 0 || strcmp(state, CN_SQLSTATE_STALE) == 0)
		return cn_fail(err, CN_EUNAVAIL, "%s", line);
	if (strcmp(state, "42501") == 0 && strncmp(line, "permission denied: ", 19) == 0)
		return cn_fail(err, CN_EPERM, "%s", line);
	if (strcmp(state, "42501") == 0)
		return cn_fail(err, CN_EPERM, "permission denied: role '%s' may not %s (%s); ask an admin for the right "
			       "canary_* role", s->user, what, line);
	if (strcmp(state, "42P01") == 0 || strcmp(state, "42883") == 0 || strcmp(state, "3F000") == 0)
		return cn_fail(err, CN_EUNAVAIL, "cannot %s: %s; the database schema is missing or old: run "
			       "'canaryctl migrate'", what, line);
	if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)
		return cn_fail(err, CN_EINPUT, "cannot %s: %s", what, line);
	if (strcmp(state, "25006") == 0) /* read_only_sql_transaction: a standby, or a primary being demoted */
		return cn_fail(err, CN_EUNAVAIL, "cannot %s: the database is read-only (%s); connect to the primary, "
			       "e.g. with several hosts and target_session_attrs=read-write", what, line);
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0)
		return cn_fail(err, CN_EUNAVAIL, "cannot %s: %s; try again", what, line);
	return cn_fail(err, CN_EINTERNAL, "cannot %s: %s (sqlstate %s)", what, line, state);
}

static uint64_t fnv1a(const char *t)
{
	uint64_t h = 1469598103934665603ull;
	for (; *t; t++)
		h = (h ^ (unsigned char)*t) * 1099511628211ull;
	return h;
}

/* The cache slot of sql, prepared now if it is new and there is room; -1: run it unprepared. A PREPARE that failed
 * inside a transaction aborted it: then *failed is its result (the real error, e.g. a missing table), which the caller
 * reports instead of running the statement into "current transaction is aborted". */
static int prepared_index(struct cn_store *s, const char *sql, PGresult **failed)
{
	uint64_t h = fnv1a(sql);
	for (int i = 0; i < s->nprep; i++)
		if (s->prep[i].hash == h && strcmp(s->prep[i].sql, sql) == 0)
			return i;
	/* not inside a failed transaction (it would refuse the PREPARE too), and only while there is room */
	PGTransactionStatusType ts = PQtransactionStatus(s->conn);
	if (s->nprep == PREPARED_MAX || (ts != PQTRANS_IDLE && ts != PQTRANS_INTRANS))
		return -1;
	char name[16];
	snprintf(name, sizeof name, "cn_%d", s->nprep);
	char *copy = strdup(sql);
	if (!copy)
		return -1;
	s->round_trips++;
	PGresult *r = PQprepare(s->conn, name, sql, 0, NULL);
	bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok) {
		/* a statement Postgres cannot prepare: outside a transaction the execution reports it in its words */
		free(copy);
		if (r && ts == PQTRANS_INTRANS && PQtransactionStatus(s->conn) == PQTRANS_INERROR)
			*failed = r;
		else
			PQclear(r);
		return -1;
	}
	PQclear(r);
	s->prep[s->nprep].hash = h;
	s->prep[s->nprep].sql = copy;
	return s->nprep++;
}

PGresult *cn_store_exec(struct cn_store *s, const char *what, const char *sql, int nparams,
			const char *const *params, struct cn_err *err)
{
	CN_BUG_ON(!s || !sql || nparams < 0 || (nparams > 0 && !params));
	PGresult *res = NULL;
	int k = nparams > 0 ? prepared_index(s, sql, &res) : -1;
	char name[16];
	if (k >= 0) {
		snprintf(name, sizeof name, "cn_%d", k);
		s->round_trips++;
		res = PQexecPrepared(s->conn, name, nparams, params, NULL, NULL, 0);
		const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
		if (state && strcmp(state, "0A000") == 0 && PQtransactionStatus(s->conn) == PQTRANS_IDLE) {
			/* "cached plan must not change result type": a migration changed what it returns; unprepared */
			PQclear(res);
			res = NULL;
		}
	}
	if (!res) {
		s->round_trips++;
		res = PQexecParams(s->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	}
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	cn_store_fail_result(s, res, what, err);
	PQclear(res);
	return NULL;
}

int cn_store_run(struct cn_store *s, const char *what, const char *sql, int nparams, const char *const *params,
		 struct cn_err *err)
{
	struct cn_err local;
	if (!err)
		err = &local;
	PGresult *res = cn_store_exec(s, what, sql, nparams, params, err);
	if (!res)
		return -err->code;
	PQclear(res);
	return 0;
}

int cn_store_begin(struct cn_store *s, struct cn_err *err)
{
	return cn_store_run(s, "begin a transaction", "BEGIN", 0, NULL, err);
}

int cn_store_commit(struct cn_store *s, struct cn_err *err)
{
	return cn_store_run(s, "commit", "COMMIT", 0, NULL, err);
}

void cn_store_rollback(struct cn_store *s)
{
	if (PQtransactionStatus(s->conn) == PQTRANS_IDLE)
		return;
	PQclear(PQexec(s->conn, "ROLLBACK"));
}

int cn_store_apply_version(struct cn_store *s, const char *what, const char *sql, const char *name,
			   const char *source, json_t *spec, const char *extra, int *version_out, bool *created_out,
			   struct cn_err *err)
{
	char *spec_text = json_dumps(spec, JSON_COMPACT);
	json_decref(spec);
	if (!spec_text)
		return cn_fail(err, CN_EINTERNAL, "cannot encode '%s' as json (out of memory)", name);
	const char *p[4] = {name, source, spec_text, extra};
	PGresult *r = cn_store_exec(s, what, sql, extra ? 4 : 3, p, err);
	free(spec_text);
	if (!r)
		return -err->code;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return cn_fail(err, CN_EINTERNAL, "cannot %s: the database returned no version for '%s'", what, name);
	}
	*version_out = (int)cn_col_int(r, 0, 0);
	*created_out = cn_col_bool(r, 0, 1);
	PQclear(r);
	return 0;
}
