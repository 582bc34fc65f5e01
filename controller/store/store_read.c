/* What read models borrow from: query results and parsed documents kept until the model is freed, and typed
 * column readers (SQL NULL becomes NULL, NAN or CN_TIME_NONE, never a string to print). */
#include "store_int.h"

#include <math.h>
#include <stdlib.h>

#include "canary/bug.h"

struct cn_read *cn_read_new(void)
{
	return calloc(1, sizeof(struct cn_read));
}

void cn_read_free(struct cn_read *rd)
{
	if (!rd)
		return;
	for (int i = 0; i < rd->nres; i++)
		PQclear(rd->res[i]);
	for (int i = 0; i < rd->ndocs; i++)
		json_decref(rd->docs[i]);
	for (int i = 0; i < rd->nmem; i++)
		free(rd->mem[i]);
	free(rd);
}

PGresult *cn_read_query(struct cn_read *rd, struct cn_store *s, const char *what, const char *sql, int nparams,
			const char *const *params, struct cn_err *err)
{
	CN_BUG_ON(rd->nres >= CN_READ_MAX);
	PGresult *r = cn_store_exec(s, what, sql, nparams, params, err);
	if (r)
		rd->res[rd->nres++] = r;
	return r;
}

void *cn_read_alloc(struct cn_read *rd, size_t n, size_t size, struct cn_err *err)
{
	CN_BUG_ON(rd->nmem >= CN_READ_MAX);
	void *p = calloc(n ? n : 1, size);
	if (!p) {
		cn_fail(err, CN_EINTERNAL, "out of memory reading from the database");
		return NULL;
	}
	rd->mem[rd->nmem++] = p;
	return p;
}

int cn_read_keep_doc(struct cn_read *rd, json_t *doc, struct cn_err *err)
{
	if (rd->ndocs >= CN_READ_MAX) {
		json_decref(doc);
		return cn_fail(err, CN_EINTERNAL, "too many documents in one read (a bug)");
	}
	rd->docs[rd->ndocs++] = doc;
	return 0;
}

const char *cn_col_str(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

int64_t cn_col_int(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

double cn_col_real(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NAN : strtod(PQgetvalue(r, row, col), NULL);
}

bool cn_col_bool(const PGresult *r, int row, int col)
{
	return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

int64_t cn_col_time(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? CN_TIME_NONE : strtoll(PQgetvalue(r, row, col), NULL, 10);
}
