/* Prometheus source: asks a Prometheus server's HTTP API (/api/v1/query) for each slot's sums, with the slot's
 * selector merged into every series selector, and parses the JSON answers with jansson. */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/dynbuf.h"
#include "canary/metrics.h"
#include "canary/promtext.h"
#include "metrics_int.h"

#define PROMQL_MAX 2048

enum { P_REQUESTS, P_ERRORS, P_LATENCY, P_TTFT, P_ITL, P_GEN, P_PROMPT, P_N };
static const char *const field[P_N] = { "requests", "errors", "latency", "ttft", "itl", "gen_tokens",
					"prompt_tokens" };

struct prom {
	struct cn_metrics base;   /* first: the adapter casts between the two */
	char name[CN_NAME_MAX];   /* base.name */
	bool curl_inited;
	CURL *curl;               /* one handle for both slots: one server, one kept-alive connection */
	char errbuf[CURL_ERROR_SIZE];
	int sock_errno;        /* why socket() failed in this query; 0: it did not */
	char base_url[CN_URL_MAX];
	bool want[P_N];
	struct cn_promsel sel[P_N];
	struct cn_promsel slot_sel[2];
	struct cn_dynbuf body;    /* the current answer, at most the limits' max_page bytes */
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct prom *pr = arg;
	size_t n = size * nmemb;

	/* too large or out of memory: a short count makes curl stop with a write error */
	return cn_dynbuf_add(&pr->body, data, n) == 0 ? n : 0;
}

static int parse_value(json_t *pair, double *out)
{
	const char *s = json_string_value(json_array_get(pair, 1));
	char *end;

	if (!json_is_array(pair) || json_array_size(pair) != 2 || !s || !*s)
		return -1;
	errno = 0;
	*out = strtod(s, &end);
	return *end == '\0' ? 0 : -1;
}

/* Runs one instant query; on success returns the answer's root (the caller decrefs it) and *result the vector.
 * On failure marks out and returns NULL. */
static json_t *query(struct prom *pr, const char *what, const char *promql, json_t **result, struct cn_sample *out)
{
	char *esc = NULL, *url = NULL;
	json_t *root = NULL, *data;
	json_error_t jerr;
	const char *status, *type, *msg;
	long http = 0;
	size_t n;
	CURLcode res;

	esc = curl_easy_escape(pr->curl, promql, 0);
	n = strlen(pr->base_url) + (esc ? strlen(esc) : 0) + 32;
	url = malloc(n);
	if (!esc || !url) {
		cn_sample_fail(out, "prometheus %s: out of memory building the %s query", pr->base_url, what);
		goto out;
	}
	snprintf(url, n, "%s/api/v1/query?query=%s", pr->base_url, esc);
	curl_easy_setopt(pr->curl, CURLOPT_URL, url);
	cn_dynbuf_reset(&pr->body);
	pr->errbuf[0] = '\0';
	pr->sock_errno = 0;
	res = curl_easy_perform(pr->curl);
	if (cn_dynbuf_error(&pr->body) == -CN_EINPUT) {
		cn_sample_fail(out, "prometheus %s: answer to the %s query is larger than %zu bytes", pr->base_url,
			       what, pr->body.max);
		goto out;
	}
	if (res != CURLE_OK && pr->sock_errno != 0) {
		cn_sample_fail(out, "cannot open a socket (%s) for prometheus %s", strerror(pr->sock_errno), pr->base_url);
		goto out;
	}
	if (res != CURLE_OK) {
		cn_sample_fail(out, "prometheus %s: %s", pr->base_url,
			       pr->errbuf[0] ? pr->errbuf : curl_easy_strerror(res));
		goto out;
	}
	curl_easy_getinfo(pr->curl, CURLINFO_RESPONSE_CODE, &http);
	root = json_loadb(cn_dynbuf_ptr(&pr->body), cn_dynbuf_len(&pr->body), 0, &jerr);
	status = json_string_value(json_object_get(root, "status"));
	if (!root || !status) {
		if (http != 200)
			cn_sample_fail(out, "prometheus %s: http status %ld for the %s query", pr->base_url, http, what);
		else
			cn_sample_fail(out, "prometheus %s: the %s query answered bad json (line %d: %s)", pr->base_url,
				       what, jerr.line, root ? "no 'status'" : jerr.text);
		goto out;
	}
	if (strcmp(status, "success") != 0) {
		msg = json_string_value(json_object_get(root, "error"));
		cn_sample_fail(out, "prometheus %s: the %s query failed: %s", pr->base_url, what,
			       msg ? msg : "status is not 'success'");
		goto out;
	}
	data = json_object_get(root, "data");
	type = json_string_value(json_object_get(data, "resultType"));
	*result = json_object_get(data, "result");
	if (!type || strcmp(type, "vector") != 0 || !json_is_array(*result)) {
		cn_sample_fail(out, "prometheus %s: the %s query answered resultType '%s', expected a vector",
			       pr->base_url, what, type ? type : "(none)");
		goto out;
	}
	curl_free(esc);
	free(url);
	return root;
out:
	json_decref(root);
	curl_free(esc);
	free(url);
	return NULL;
}

/* `sum(...)` of one series; an empty vector leaves *value untouched (NAN: missing). */
static int query_sum(struct prom *pr, int slot, int k, const char *suffix, double *value, struct cn_sample *out)
{
	char sel[PROMQL_MAX], promql[PROMQL_MAX + 16];
	struct cn_err err = { 0 };
	json_t *root, *result;

	if (cn_promsel_format(&pr->sel[k], suffix, &pr->slot_sel[slot], sel, sizeof sel, &err) < 0) {
		cn_sample_fail(out, "%s", err.msg);
		return -1;
	}
	snprintf(promql, sizeof promql, "sum(%s)", sel);
	root = query(pr, field[k], promql, &result, out);
	if (!root)
		return -1;
	if (json_array_size(result) > 0 &&
	    parse_value(json_object_get(json_array_get(result, 0), "value"), value) < 0) {
		cn_sample_fail(out, "prometheus %s: the %s query answered a bad value", pr->base_url, field[k]);
		json_decref(root);
		return -1;
	}
	json_decref(root);
	return 0;
}

static int query_hist(struct prom *pr, int slot, int k, struct cn_histogram *h, struct cn_sample *out)
{
	char sel[PROMQL_MAX], promql[PROMQL_MAX + 32], why[CN_WHY_MAX];
	struct cn_err err = { 0 };
	json_t *root = NULL, *result, *el;
	size_t i;
	int rc = -1;

	if (cn_promsel_format(&pr->sel[k], "_bucket", &pr->slot_sel[slot], sel, sizeof sel, &err) < 0) {
		cn_sample_fail(out, "%s", err.msg);
		goto out;
	}
	snprintf(promql, sizeof promql, "sum by (le) (%s)", sel);
	root = query(pr, field[k], promql, &result, out);
	if (!root)
		goto out;
	json_array_foreach(result, i, el) {
		const char *le_text = json_string_value(json_object_get(json_object_get(el, "metric"), "le"));
		double le, v;
		char *end;
		int at;
		if (!le_text || parse_value(json_object_get(el, "value"), &v) < 0) {
			cn_sample_fail(out, "prometheus %s: the %s query answered a bucket without le or value",
				       pr->base_url, field[k]);
			goto out;
		}
		le = strtod(le_text, &end);
		if (*end != '\0' || end == le_text || isnan(le)) {
			cn_sample_fail(out, "prometheus %s: the %s query answered bad le '%s'", pr->base_url, field[k],
				       le_text);
			goto out;
		}
		le *= cn_promtext_unit_seconds(pr->sel[k].name); /* _ms, _us: the core's bounds are seconds */
		at = cn_hist_slot(h, le);
		if (at < 0) {
			cn_sample_fail(out, "prometheus %s: histogram '%s' has more than %d distinct le bounds",
				       pr->base_url, pr->sel[k].name, CN_MAX_BUCKETS);
			goto out;
		}
		h->count[at] += v;
	}
	if (cn_hist_finish(h, pr->sel[k].name, why, sizeof why) < 0) {
		cn_sample_fail(out, "prometheus %s: %s", pr->base_url, why);
		goto out;
	}
	rc = h->nbuckets > 0 ? query_sum(pr, slot, k, "_sum", &h->sum, out) : 0;
	if (rc == 0 && h->nbuckets > 0)
		h->sum *= cn_promtext_unit_seconds(pr->sel[k].name);
out:
	json_decref(root);
	if (rc < 0)
		h->nbuckets = 0;
	return rc;
}

static int prom_sample(struct cn_metrics *m, int slot, struct cn_sample *out)
{
	struct prom *pr = (struct prom *)m;
	struct cn_histogram *hist[P_N] = { NULL, NULL, &out->latency, &out->ttft, &out->itl, NULL, NULL };

	if (pr->want[P_REQUESTS] && query_sum(pr, slot, P_REQUESTS, "", &out->requests, out) < 0)
		return 0;
	if (pr->want[P_ERRORS] && query_sum(pr, slot, P_ERRORS, "", &out->errors, out) < 0)
		return 0;
	for (int k = P_LATENCY; k <= P_ITL; k++)
		if (pr->want[k] && query_hist(pr, slot, k, hist[k], out) < 0)
			return 0;
	/* token counters (unit economics); no per-feature breakdown from this source yet */
	if (pr->want[P_GEN] && query_sum(pr, slot, P_GEN, "", &out->gen_tokens, out) < 0)
		return 0;
	if (pr->want[P_PROMPT] && query_sum(pr, slot, P_PROMPT, "", &out->prompt_tokens, out) < 0)
		return 0;
	/* The requests selector may match nothing while the latency histogram counts every finished request: then
	 * its +Inf bucket (equal to its _count) stands in for the request counter. */
	if (isnan(out->requests) && out->latency.nbuckets > 0)
		out->requests = out->latency.count[out->latency.nbuckets - 1];
	return 0;
}

static void prom_close(struct cn_metrics *m)
{
	struct prom *pr = (struct prom *)m;

	if (pr->curl)
		curl_easy_cleanup(pr->curl);
	if (pr->curl_inited)
		curl_global_cleanup();
	for (int k = 0; k < P_N; k++)
		cn_promsel_free(&pr->sel[k]);
	cn_promsel_free(&pr->slot_sel[0]);
	cn_promsel_free(&pr->slot_sel[1]);
	cn_dynbuf_free(&pr->body);
	free(pr);
}

static const struct cn_metrics_ops prom_ops = { .sample = prom_sample, .close = prom_close };

struct cn_metrics *cn_metrics_prom_open(const struct cn_service *svc, const struct cn_metrics_limits *lim,
					struct cn_err *err)
{
	const struct cn_metric_names *nm = &svc->metrics.names;
	const char *text[P_N] = { nm->requests, nm->errors, nm->latency, nm->ttft, nm->itl, nm->gen_tokens,
				  nm->prompt_tokens };
	struct prom *pr = calloc(1, sizeof *pr);
	long timeout = svc->metrics.timeout_ms > 0 ? (long)svc->metrics.timeout_ms : CN_METRICS_DEFAULT_TIMEOUT_MS;
	size_t n;

	if (!pr) {
		cn_fail(err, CN_EINTERNAL, "out of memory opening metrics of service '%s'", svc->name);
		return NULL;
	}
	pr->base.ops = &prom_ops;
	snprintf(pr->name, sizeof pr->name, "%s", svc->name);
	pr->base.name = pr->name;
	if (lim)
		pr->base.lim = *lim;
	cn_dynbuf_init(&pr->body, lim && lim->max_page ? lim->max_page : CN_PROMTEXT_MAX_PAGE);
	snprintf(pr->base_url, sizeof pr->base_url, "%s", svc->metrics.prometheus_url);
	n = strlen(pr->base_url);
	while (n > 0 && pr->base_url[n - 1] == '/')
		pr->base_url[--n] = '\0';
	if (n == 0) {
		cn_fail(err, CN_EINPUT, "service '%s': metrics source prometheus needs prometheus_url (e.g. "
			"http://127.0.0.1:9090)", svc->name);
		goto out;
	}
	for (int k = 0; k < P_N; k++) {
		if (text[k][0] == '\0')
			continue;
		if (cn_promsel_parse(text[k], &pr->sel[k], err) < 0) {
			cn_err_prefix(err, "service '%s' metric name '%s'", svc->name, field[k]);
			goto out;
		}
		if (pr->sel[k].name[0] == '\0') {
			cn_fail(err, CN_EINPUT, "service '%s' metric name '%s': selector '%s' has no metric name",
				svc->name, field[k], text[k]);
			goto out;
		}
		pr->want[k] = true;
	}
	for (int i = 0; i < 2; i++) {
		if (cn_promsel_parse(svc->slots[i].selector, &pr->slot_sel[i], err) < 0) {
			cn_err_prefix(err, "service '%s' slot '%s'", svc->name, svc->slots[i].name);
			goto out;
		}
		if (pr->slot_sel[i].name[0] != '\0') {
			cn_fail(err, CN_EINPUT, "service '%s' slot '%s': selector '%s' must be label matchers only, e.g. "
				"{slot=\"blue\"}", svc->name, svc->slots[i].name, svc->slots[i].selector);
			goto out;
		}
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		cn_fail(err, CN_EINTERNAL, "cannot initialise libcurl");
		goto out;
	}
	pr->curl_inited = true;
	pr->curl = curl_easy_init();
	if (!pr->curl) {
		cn_fail(err, CN_EINTERNAL, "cannot create an http client for '%s'", pr->base_url);
		goto out;
	}
	if (curl_easy_setopt(pr->curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK) {
		cn_fail(err, CN_EINTERNAL, "libcurl refuses http: cannot query '%s'", pr->base_url);
		goto out;
	}
	curl_easy_setopt(pr->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(pr->curl, CURLOPT_CONNECTTIMEOUT_MS, timeout);
	curl_easy_setopt(pr->curl, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(pr->curl, CURLOPT_USERAGENT, "canary-metrics/0.1");
	curl_easy_setopt(pr->curl, CURLOPT_ERRORBUFFER, pr->errbuf);
	curl_easy_setopt(pr->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(pr->curl, CURLOPT_WRITEDATA, pr);
	curl_easy_setopt(pr->curl, CURLOPT_OPENSOCKETFUNCTION, cn_metrics_open_socket); /* says "Too many open files" */
	curl_easy_setopt(pr->curl, CURLOPT_OPENSOCKETDATA, &pr->sock_errno);
	return &pr->base;
out:
	prom_close(&pr->base);
	return NULL;
}
