/* Command gateway adapter, for any gateway with a command line (kubectl, the AWS CLI, socat to HAProxy ...): `set`
 * is an argv template run without a shell with the move's placeholders filled in; `get` prints the shares as JSON
 * ({"blue": 95, "green": 5}). Every set is confirmed by a get. Each run is bounded in time (the process group is
 * killed) and in output; a non-zero exit, a timeout or output that is not the expected JSON fails with the
 * program's own words (its stderr, one line). */
#include "canary/gateway.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/service.h"
#include "gateway_int.h"

#define OUT_MAX 16384     /* what get may print */
#define ERR_MAX 4096      /* stderr kept for the message */
#define ARG_MAX_BYTES 8192 /* one argument after expansion */
#define PCT_SUM_SLACK 1e-6
#define CONFIRM_SLACK 0.25 /* percentage points; canaryd's reconcile treats shares this close as equal */

struct cmd_gw {
	struct cn_gateway base;
	struct cn_service svc;
	int64_t timeout_ms;
};

void cn_command_format_pct(double pct, char *buf, size_t size)
{
	snprintf(buf, size, "%.2f", round(pct * 100.0) / 100.0);
	char *dot = strchr(buf, '.');
	if (!dot)
		return;
	char *end = buf + strlen(buf);
	while (end > dot + 1 && end[-1] == '0')
		*--end = '\0';
	if (end == dot + 1)
		*dot = '\0';
}

int cn_command_parse_shares(const char *json, size_t len, const char *const slot[2], double pct[2],
			    struct cn_err *err)
{
	char q[200];
	json_error_t jerr;
	json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	double v[2] = { NAN, NAN };
	int rc = 0;
	if (!doc)
		return cn_fail(err, CN_EINTERNAL, "get printed '%s', not a JSON object such as {\"%s\": 95, \"%s\": 5} "
			       "(%s)", cn_gw_quote_output(json, NULL, q, sizeof q), slot[0], slot[1], jerr.text);
	if (!json_is_object(doc)) {
		rc = cn_fail(err, CN_EINTERNAL, "get printed '%s', not a JSON object such as {\"%s\": 95, \"%s\": 5}",
			     cn_gw_quote_output(json, NULL, q, sizeof q), slot[0], slot[1]);
		goto out;
	}
	const char *key;
	json_t *val;
	json_object_foreach(doc, key, val) {
		int s = strcmp(key, slot[0]) == 0 ? 0 : strcmp(key, slot[1]) == 0 ? 1 : -1;
		if (s < 0) {
			rc = cn_fail(err, CN_EINTERNAL, "get printed a share for '%s', which is neither slot ('%s', '%s')",
				     cn_hap_quote(key, q, 80), slot[0], slot[1]);
			goto out;
		}
		if (!json_is_number(val) || !isfinite(json_number_value(val)) || json_number_value(val) < 0) {
			rc = cn_fail(err, CN_EINTERNAL, "get printed a share for '%s' that is not a number >= 0", slot[s]);
			goto out;
		}
		v[s] = json_number_value(val);
	}
	for (int s = 0; s < 2; s++)
		if (isnan(v[s])) {
			rc = cn_fail(err, CN_EINTERNAL, "get printed '%s' without a share for slot '%s'",
				     cn_gw_quote_output(json, NULL, q, sizeof q), slot[s]);
			goto out;
		}
	double sum = v[0] + v[1];
	if (!isfinite(sum)) {
		rc = cn_fail(err, CN_EINTERNAL, "get printed shares too large to add");
		goto out;
	}
	pct[0] = sum > 0 ? 100.0 * v[0] / sum : 0.0;
	pct[1] = sum > 0 ? 100.0 * v[1] / sum : 0.0;
out:
	json_decref(doc);
	return rc;
}

static void free_argv(char **argv)
{
	if (!argv)
		return;
	for (char **a = argv; *a; a++)
		free(*a);
	free(argv);
}

/* Expands a template into a NULL-terminated argv of new strings (free with free_argv). */
static int expand(const struct cmd_gw *g, const char *which, const struct cn_argv_tmpl *t, const double pct[2],
		  char ***argv_out, struct cn_err *err)
{
	char cp[32], bp[32], names[2][CN_NAME_MAX + 8];
	struct cn_tmpl_var vars[CN_COMMAND_VARS];
	int cand = g->base.candidate;
	cn_command_format_pct(pct[cand], cp, sizeof cp);
	cn_command_format_pct(pct[1 - cand], bp, sizeof bp);
	size_t nvars = cn_service_command_vars(&g->svc, cand, cp, bp, names, vars);
	char **argv = calloc((size_t)t->argc + 1, sizeof *argv);
	if (!argv)
		return cn_fail(err, CN_EINTERNAL, "out of memory");
	const char *arg = t->buf;
	for (int i = 0; i < t->argc; i++, arg += strlen(arg) + 1) {
		argv[i] = malloc(ARG_MAX_BYTES);
		if (!argv[i]) {
			free_argv(argv);
			return cn_fail(err, CN_EINTERNAL, "out of memory");
		}
		if (cn_tmpl_expand(arg, vars, nvars, argv[i], ARG_MAX_BYTES, NULL, err) < 0) {
			free_argv(argv);
			return cn_err_prefix(err, "service '%s': gateway %s argument %d", g->svc.name, which, i + 1);
		}
	}
	*argv_out = argv;
	return 0;
}

/* Runs the set or get template; on success out holds its stdout (get). */
static int run(const struct cmd_gw *g, const char *which, const struct cn_argv_tmpl *t, const double pct[2],
	       char *out, size_t outsz, struct cn_err *err)
{
	char **argv = NULL, q[300];
	char *errout = malloc(ERR_MAX);
	int rc;
	if (!errout)
		return cn_fail(err, CN_EINTERNAL, "out of memory");
	if ((rc = expand(g, which, t, pct, &argv, err)) < 0)
		goto out;
	struct cn_run r = { .out = out, .outsz = outsz, .errout = errout, .errsz = ERR_MAX };
	if ((rc = cn_gw_run((const char *const *)argv, g->timeout_ms, &r, err)) < 0) {
		cn_err_prefix(err, "gateway %s", which);
		goto out;
	}
	if (r.timed_out) {
		rc = cn_fail(err, CN_EUNAVAIL, "gateway %s '%s' did not finish within %lld ms (killed)%s%s%s", which,
			     argv[0], (long long)g->timeout_ms, r.err_len ? ": '" : "",
			     r.err_len ? cn_gw_quote_output(errout, NULL, q, sizeof q) : "", r.err_len ? "'" : "");
		goto out;
	}
	if (r.status != 0) {
		rc = cn_fail(err, CN_EUNAVAIL, "gateway %s '%s' exited with status %d: '%s'", which, argv[0], r.status,
			     r.err_len ? cn_gw_quote_output(errout, NULL, q, sizeof q) : "(nothing on stderr)");
		goto out;
	}
	if (outsz && r.out_truncated) {
		rc = cn_fail(err, CN_EINTERNAL, "gateway %s '%s' printed more than %zu bytes", which, argv[0],
			     outsz - 1);
		goto out;
	}
	rc = 0;
out:
	free_argv(argv);
	free(errout);
	return rc;
}

static int read_shares(struct cmd_gw *g, const double pct_hint[2], double pct[2], struct cn_err *err)
{
	const char *slot[2] = { g->svc.slots[0].name, g->svc.slots[1].name };
	char *out = malloc(OUT_MAX);
	if (!out)
		return cn_fail(err, CN_EINTERNAL, "out of memory");
	int rc = run(g, "get", &g->svc.gateway.get, pct_hint, out, OUT_MAX, err);
	if (rc == 0 && (rc = cn_command_parse_shares(out, strlen(out), slot, pct, err)) < 0)
		cn_err_prefix(err, "gateway get '%.60s'", g->svc.gateway.get.buf);
	free(out);
	return rc;
}

static int cmd_set_weights(struct cn_gateway *base, const double pct[2], struct cn_err *err)
{
	struct cmd_gw *g = (struct cmd_gw *)base;
	double got[2];
	char a[32], b[32], c[32], d[32];
	int rc;
	if (!pct || !isfinite(pct[0]) || !isfinite(pct[1]) || pct[0] < 0 || pct[1] < 0 ||
	    fabs(pct[0] + pct[1] - 100.0) > PCT_SUM_SLACK)
		return cn_fail(err, CN_EINPUT, "traffic shares %g %% / %g %% must be within 0..100 and sum to 100",
			       pct ? pct[0] : NAN, pct ? pct[1] : NAN);
	if ((rc = run(g, "set", &g->svc.gateway.set, pct, NULL, 0, err)) < 0)
		return rc;
	if ((rc = read_shares(g, pct, got, err)) < 0)
		return rc;
	if (fabs(got[0] - pct[0]) > CONFIRM_SLACK || fabs(got[1] - pct[1]) > CONFIRM_SLACK) {
		cn_command_format_pct(got[0], a, sizeof a);
		cn_command_format_pct(got[1], b, sizeof b);
		cn_command_format_pct(pct[0], c, sizeof c);
		cn_command_format_pct(pct[1], d, sizeof d);
		return cn_fail(err, CN_EINTERNAL, "gateway get reports %s %s%% and %s %s%% after set was asked for "
			       "%s%% and %s%%; nothing advances on an unconfirmed share", g->svc.slots[0].name, a,
			       g->svc.slots[1].name, b, c, d);
	}
	return 0;
}

static int cmd_get_weights(struct cn_gateway *base, double pct[2], struct cn_err *err)
{
	struct cmd_gw *g = (struct cmd_gw *)base;
	const double none[2] = { 0, 0 }; /* a get's placeholders carry no move */
	return read_shares(g, none, pct, err);
}

static void cmd_close(struct cn_gateway *base)
{
	free(base);
}

static const struct cn_gateway_ops cmd_ops = {
	.name = "command",
	.set_weights = cmd_set_weights,
	.get_weights = cmd_get_weights,
	.close = cmd_close,
};

struct cn_gateway *cn_gateway_command_open(const struct cn_service *svc, struct cn_err *err)
{
	if (svc->gateway.set.argc <= 0 || svc->gateway.get.argc <= 0) {
		cn_fail(err, CN_EINPUT, "service '%s': gateway kind command needs both a set and a get template",
			svc->name);
		return NULL;
	}
	struct cmd_gw *g = calloc(1, sizeof *g);
	if (!g) {
		cn_fail(err, CN_EINTERNAL, "out of memory opening the gateway of service '%s'", svc->name);
		return NULL;
	}
	g->base.ops = &cmd_ops;
	g->svc = *svc;
	g->timeout_ms = svc->gateway.timeout_ms > 0 ? svc->gateway.timeout_ms : 10000;
	return &g->base;
}
