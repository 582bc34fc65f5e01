/* The load generator's run: open-loop arrivals from the schedule, one OpenAI-compatible POST per arrival through
 * libcurl's multi interface (keep-alive connections, one thread), streaming answers timed token by token, and every
 * outcome counted in its prompt-length band. A refused connection, a reset stream or a timeout is a counted error. */
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canary/dynbuf.h"
#include "canary/file.h"
#include "canary/load.h"

#define LOAD_BODY_MAX (4 * 1024 * 1024)    /* one request body: a 30,000-token prompt is about 150 KB */
#define LOAD_ANSWER_MAX (1024 * 1024)      /* a non-streaming answer kept for its usage numbers */
#define LOAD_PROMPTS_FILE_MAX (256u * 1024 * 1024)
#define LOAD_PROMPTS_MAX 1000000
#define LOAD_PROMPT_TOKENS_MAX 500000      /* a synthetic prompt is at most this many words */
#define LOAD_IN_FLIGHT_DEFAULT 1024
#define LOAD_POLL_MS 20

struct prompt {
	char *json;  /* the prompt as a JSON string literal, quotes included */
	double tokens;
};

struct req {
	CURL *easy;
	struct curl_slist *headers;
	struct cn_dynbuf body, answer;
	struct cn_sse sse;
	bool stream;
	enum cn_band band;
	double t0, t_first, t_last; /* seconds since the run's start */
	struct cn_load_result *res;
	double run_start;
	const struct cn_contract_rt *contract; /* NULL: answers are not checked */
	struct cn_contract_stream cs;          /* a streamed answer's check */
	bool answer_cut;                       /* the answer was longer than LOAD_ANSWER_MAX */
	struct req *prev, *next; /* the requests in flight */
};

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double count_words(const char *s)
{
	double n = 0;
	bool in = false;
	for (; *s; s++) {
		bool sp = *s == ' ' || *s == '\n' || *s == '\t' || *s == '\r';
		if (!sp && !in)
			n++;
		in = !sp;
	}
	return n;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Reads a JSONL file of {"prompt": "..."} lines (or chat's {"messages": [..., {"content": "..."}]}: the last
 * message's content). Tokens are counted as words. */
static int read_prompts(const char *path, struct prompt **out, size_t *nout, double *median, double *p90,
			struct cn_err *err)
{
	char *text = NULL;
	size_t len = 0, n = 0, cap = 0;
	struct prompt *ps = NULL;
	double *lens = NULL;
	int rc = cn_file_read(path, LOAD_PROMPTS_FILE_MAX, 0, &text, &len, err);
	if (rc < 0)
		return cn_err_prefix(err, "prompts_file");
	long lineno = 0;
	for (char *line = text, *next; line && *line; line = next) {
		char *nl = strchr(line, '\n');
		next = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		lineno++;
		if (strspn(line, " \t\r") == strlen(line))
			continue;
		json_error_t je;
		json_t *doc = json_loads(line, 0, &je);
		const char *p = NULL;
		if (doc) {
			p = json_string_value(json_object_get(doc, "prompt"));
			json_t *msgs = json_object_get(doc, "messages");
			if (!p && json_is_array(msgs) && json_array_size(msgs) > 0)
				p = json_string_value(json_object_get(json_array_get(msgs, json_array_size(msgs) - 1),
								      "content"));
		}
		if (!p) {
			json_decref(doc);
			rc = cn_fail(err, CN_EINPUT, "%s:%ld: expected a JSON object with a \"prompt\" string (or "
						     "\"messages\" ending with a \"content\")", path, lineno);
			goto out;
		}
		if (n == LOAD_PROMPTS_MAX) {
			json_decref(doc);
			rc = cn_fail(err, CN_EINPUT, "%s: more than %d prompts; sample the file down", path,
				     LOAD_PROMPTS_MAX);
			goto out;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct prompt *np = realloc(ps, nc * sizeof *np);
			if (!np) {
				json_decref(doc);
				rc = cn_fail(err, CN_EINTERNAL, "out of memory reading %s", path);
				goto out;
			}
			ps = np;
			cap = nc;
		}
		struct cn_dynbuf b;
		cn_dynbuf_init(&b, LOAD_BODY_MAX);
		cn_dynbuf_add_json_string(&b, p, strlen(p));
		ps[n].tokens = count_words(p);
		ps[n].json = cn_dynbuf_error(&b) ? NULL : cn_dynbuf_take(&b, NULL);
		cn_dynbuf_free(&b);
		json_decref(doc);
		if (!ps[n].json) {
			rc = cn_fail(err, CN_EINPUT, "%s:%ld: prompt too long (over %d bytes)", path, lineno,
				     LOAD_BODY_MAX);
			goto out;
		}
		n++;
	}
	if (n == 0) {
		rc = cn_fail(err, CN_EINPUT, "%s: no prompts in the file", path);
		goto out;
	}
	lens = malloc(n * sizeof *lens);
	if (!lens) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory reading %s", path);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		lens[i] = ps[i].tokens;
	qsort(lens, n, sizeof *lens, cmp_double);
	*median = lens[n / 2];
	*p90 = lens[(size_t)(0.9 * (double)(n - 1))];
	*out = ps;
	*nout = n;
	ps = NULL;
	n = 0;
	rc = 0;
out:
	for (size_t i = 0; i < n; i++)
		free(ps[i].json);
	free(ps);
	free(lens);
	free(text);
	return rc;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct req *r = userdata;
	size_t n = size * nmemb;
	if (!r->stream) {
		/* keep the head of the answer for its usage numbers and the contract; the rest is read and dropped */
		if (cn_dynbuf_len(&r->answer) + n > LOAD_ANSWER_MAX)
			r->answer_cut = true;
		if (cn_dynbuf_len(&r->answer) < LOAD_ANSWER_MAX)
			cn_dynbuf_add(&r->answer, ptr, n < LOAD_ANSWER_MAX - cn_dynbuf_len(&r->answer)
						  ? n : LOAD_ANSWER_MAX - cn_dynbuf_len(&r->answer));
		return n;
	}
	long toks = cn_sse_feed(&r->sse, ptr, n);
	if (toks < 0)
		return 0; /* an over-long line: abort the transfer, counted as a stream error */
	if (toks > 0) {
		double now = mono() - r->run_start;
		struct cn_band_stats *b = &r->res->bands[r->band];
		if (r->t_first == 0) {
			r->t_first = now;
			toks--;
		} else {
			/* tokens that came in one read share the gap since the last one */
			for (long i = 0; i < toks; i++)
				cn_lhist_add(&b->itl, (now - r->t_last) / (double)toks);
			toks = 0;
		}
		for (long i = 0; i < toks; i++)
			cn_lhist_add(&b->itl, 0);
		r->t_last = now;
	}
	return n;
}

/* Easy handles of finished requests, kept for the next ones (curl_easy_reset keeps their buffers): a new handle per
 * request was about 9% of the generator's instructions (callgrind, 200/s: curl_easy_init and its calloc). */
struct easy_pool {
	CURL **h;
	long n, cap;
};

static CURL *pool_get(struct easy_pool *p)
{
	if (p->n == 0)
		return curl_easy_init();
	CURL *e = p->h[--p->n];
	curl_easy_reset(e);
	return e;
}

/* Keeps e (removed from the multi handle) for a later request, or cleans it up when the pool is full. */
static void pool_put(struct easy_pool *p, CURL *e)
{
	if (p->h && p->n < p->cap)
		p->h[p->n++] = e;
	else
		curl_easy_cleanup(e);
}

static void pool_free(struct easy_pool *p)
{
	while (p->n > 0)
		curl_easy_cleanup(p->h[--p->n]);
	free(p->h);
	p->h = NULL;
}

static void req_free(struct req *r)
{
	if (!r)
		return;
	if (r->easy)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	cn_dynbuf_free(&r->body);
	cn_dynbuf_free(&r->answer);
	cn_sse_free(&r->sse);
	cn_contract_stream_free(&r->cs);
	free(r);
}

static enum cn_band band_of(const struct cn_load_result *res, double tokens)
{
	if (tokens <= res->bands[CN_BAND_SHORT].hi)
		return CN_BAND_SHORT;
	if (tokens <= res->bands[CN_BAND_MEDIAN].hi)
		return CN_BAND_MEDIAN;
	return CN_BAND_LONG;
}

/* A streamed event's payload, for the contract check. */
static void on_event(void *arg, const char *data, size_t len)
{
	struct req *r = arg;
	cn_contract_stream_chunk(r->contract, &r->cs, data, len);
}

/* Writes one request body (the prompt drawn from rng, or fp from the prompts file) into b; *tokens is the prompt's
 * length. Returns 0 or the buffer's error. */
static int make_body(struct cn_dynbuf *b, const struct cn_profile *pf, const struct prompt *fp, struct cn_rng *rng,
		     const char *tools, double *tokens)
{
	long out_tokens = lround(cn_rng_lognormal_p99(rng, pf->output_tokens.median, pf->output_tokens.p99));
	if (out_tokens < 1)
		out_tokens = 1;
	cn_dynbuf_adds(b, "{\"model\":");
	cn_dynbuf_add_json_string(b, pf->model, strlen(pf->model));
	cn_dynbuf_adds(b, pf->endpoint == CN_ENDPOINT_CHAT ? ",\"messages\":[{\"role\":\"user\",\"content\":"
							    : ",\"prompt\":");
	if (fp) {
		*tokens = fp->tokens;
		cn_dynbuf_adds(b, fp->json);
	} else {
		long n = lround(cn_rng_lognormal_p99(rng, pf->prompt_tokens.median, pf->prompt_tokens.p99));
		n = n < 1 ? 1 : n > LOAD_PROMPT_TOKENS_MAX ? LOAD_PROMPT_TOKENS_MAX : n;
		*tokens = (double)n;
		/* synthetic text: one word per token */
		static const char words[] = "tok tok tok tok tok tok tok tok tok tok tok tok tok tok tok tok ";
		cn_dynbuf_add(b, "\"", 1);
		for (long left = n; left > 0;) {
			long k = left < 16 ? left : 16;
			cn_dynbuf_add(b, words, (size_t)k * 4 - (left == k ? 1 : 0));
			left -= k;
		}
		cn_dynbuf_add(b, "\"", 1);
	}
	if (pf->endpoint == CN_ENDPOINT_CHAT)
		cn_dynbuf_adds(b, "}]");
	if (tools && pf->endpoint == CN_ENDPOINT_CHAT)
		cn_dynbuf_addf(b, ",\"tools\":%s", tools);
	cn_dynbuf_addf(b, ",\"max_tokens\":%ld,\"stream\":%s}", out_tokens, pf->stream ? "true" : "false");
	return cn_dynbuf_error(b);
}

/* Adds one request of body (copied) to url; NULL when out of memory. */
static struct req *req_start(CURLM *m, struct easy_pool *pool, const char *url, const struct cn_profile *pf, const struct cn_dynbuf *body,
			     double tokens, struct cn_load_result *res, double run_start,
			     const struct cn_contract_rt *contract)
{
	struct req *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->res = res;
	r->run_start = run_start;
	r->stream = pf->stream;
	r->contract = contract;
	cn_dynbuf_init(&r->body, LOAD_BODY_MAX);
	cn_dynbuf_init(&r->answer, LOAD_ANSWER_MAX);
	cn_sse_init(&r->sse);
	cn_contract_stream_init(&r->cs);
	if (contract) {
		r->sse.on_data = on_event;
		r->sse.on_data_arg = r;
	}
	struct cn_dynbuf *b = &r->body;
	cn_dynbuf_add(b, cn_dynbuf_ptr(body), cn_dynbuf_len(body));
	r->band = band_of(res, tokens);
	res->prompt_tokens_sent += (long)tokens;
	if (cn_dynbuf_error(b))
		goto fail;

	if (!(r->easy = pool_get(pool)))
		goto fail;
	r->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (!r->headers)
		goto fail;
	if (pf->stream) {
		struct curl_slist *h = curl_slist_append(r->headers, "Accept: text/event-stream");
		if (!h)
			goto fail;
		r->headers = h;
	}
	CURL *e = r->easy;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, cn_dynbuf_ptr(b));
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)cn_dynbuf_len(b));
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)pf->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(pf->timeout_ms < 10000 ? pf->timeout_ms : 10000));
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_EXPECT_100_TIMEOUT_MS, 0L); /* no "Expect: 100-continue" wait on big prompts */
	r->t0 = mono() - run_start;
	if (curl_multi_add_handle(m, e) != CURLM_OK)
		goto fail;
	return r;
fail:
	req_free(r);
	return NULL;
}

/* Counts a finished request in its band and the totals. */
static void req_done(struct req *r, CURLcode cc)
{
	struct cn_load_result *res = r->res;
	struct cn_band_stats *b = &res->bands[r->band];
	double now = mono() - r->run_start;
	long status = 0;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	b->requests++;
	bool ok = false;
	if (cc == CURLE_OPERATION_TIMEDOUT)
		res->timeouts++;
	else if (cc != CURLE_OK && r->stream && status == 200)
		res->stream_errors++; /* reset or cut in the middle of the events */
	else if (cc != CURLE_OK)
		res->transport_errors++;
	else if (status < 200 || status >= 300)
		res->http_errors++;
	else if (r->stream && (!r->sse.done || r->sse.error || r->t_first == 0))
		res->stream_errors++;
	else
		ok = true;
	if (!ok) {
		b->errors++;
		res->errors++;
		return;
	}
	if (r->contract) {
		char why[CN_CONTRACT_WHY_MAX] = "";
		bool conform;
		b->contract_checked++;
		res->contract_checked++;
		if (r->stream) {
			conform = cn_contract_stream_end(r->contract, &r->cs);
			snprintf(why, sizeof why, "%s", r->cs.why);
		} else if (r->answer_cut) {
			conform = false;
			snprintf(why, sizeof why, "the answer is over %d bytes; it was not checked", LOAD_ANSWER_MAX);
		} else {
			conform = cn_contract_check_answer(r->contract, cn_dynbuf_ptr(&r->answer),
							   cn_dynbuf_len(&r->answer), why, sizeof why);
		}
		if (!conform) {
			b->contract_violations++;
			res->contract_violations++;
			if (!res->contract_example[0])
				snprintf(res->contract_example, sizeof res->contract_example, "%s", why);
		}
	}
	res->ok++;
	cn_lhist_add(&b->latency, now - r->t0);
	cn_lhist_add(&res->latency, now - r->t0);
	if (r->stream) {
		cn_lhist_add(&b->ttft, r->t_first - r->t0);
		res->output_tokens_seen += r->sse.tokens;
	} else {
		const char *u = strstr(cn_dynbuf_ptr(&r->answer), "\"completion_tokens\":");
		if (u)
			res->output_tokens_seen += strtol(u + 20, NULL, 10);
	}
}

static void unlink_req(struct req **head, struct req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		*head = r->next;
	if (r->next)
		r->next->prev = r->prev;
}

static int drain(CURLM *m, struct easy_pool *pool, long *in_flight, struct req **head)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(m, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct req *r = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		CURLcode cc = msg->data.result;
		curl_multi_remove_handle(m, msg->easy_handle);
		unlink_req(head, r);
		req_done(r, cc);
		pool_put(pool, r->easy);
		r->easy = NULL;
		req_free(r);
		(*in_flight)--;
	}
	return 0;
}

/* base (without trailing slashes) and the endpoint's path: a new string, or NULL when out of memory. */
static char *endpoint_url(const char *base, const struct cn_profile *pf)
{
	size_t bl = strlen(base);
	while (bl && base[bl - 1] == '/')
		bl--;
	const char *path = pf->endpoint == CN_ENDPOINT_CHAT ? "/v1/chat/completions" : "/v1/completions";
	size_t ul = bl + strlen(path) + 1;
	char *url = malloc(ul);
	if (!url)
		return NULL;
	memcpy(url, base, bl);
	memcpy(url + bl, path, strlen(path) + 1);
	return url;
}

static void push(struct req **head, struct req *r)
{
	r->next = *head;
	if (*head)
		(*head)->prev = r;
	*head = r;
}

int cn_load_run(const struct cn_load_opts *o, struct cn_load_result *out, struct cn_err *err)
{
	const struct cn_profile *pf = o->profile;
	struct cn_load_result *res = NULL, *res2 = NULL;
	struct prompt *prompts = NULL;
	size_t nprompts = 0;
	CURLM *m = NULL;
	char *url = NULL, *url2 = NULL;
	struct cn_dynbuf body;
	long in_flight = 0;
	struct easy_pool pool = { 0 };
	struct req *head = NULL;
	int rc;

	cn_dynbuf_init(&body, LOAD_BODY_MAX);
	for (int i = 0; i < 2; i++) {
		const char *u = i ? o->baseline_url : o->base_url;
		if (u && strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
			return cn_fail(err, CN_EINPUT, "target '%s': expected an http:// or https:// url", u);
	}
	if (!(res = calloc(1, sizeof *res)) || (o->baseline_url && !(res2 = calloc(1, sizeof *res2)))) {
		free(res);
		return cn_fail(err, CN_EINTERNAL, "out of memory");
	}
	double median = pf->prompt_tokens.median, p90 = cn_lognormal_quantile(median, pf->prompt_tokens.p99, 0.9);
	if (pf->prompts_file[0] &&
	    (rc = read_prompts(pf->prompts_file, &prompts, &nprompts, &median, &p90, err)) < 0)
		goto out;
	cn_load_bands(res, median, p90);
	if (res2)
		cn_load_bands(res2, median, p90);
	if (!(url = endpoint_url(o->base_url, pf)) || (o->baseline_url && !(url2 = endpoint_url(o->baseline_url, pf)))) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory");
		goto out;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(m = curl_multi_init())) {
		rc = cn_fail(err, CN_EINTERNAL, "libcurl could not start");
		goto out;
	}
	long max_in_flight = o->max_in_flight > 0 ? o->max_in_flight : LOAD_IN_FLIGHT_DEFAULT;
	pool.cap = 2 * max_in_flight; /* with a baseline, two requests per arrival */
	pool.h = calloc((size_t)pool.cap, sizeof *pool.h); /* NULL: no pool, a handle per request */
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, max_in_flight);
	int64_t max_req = o->max_requests > 0 ? o->max_requests : pf->max_requests;
	double duration = o->duration_s > 0 ? o->duration_s : (double)pf->duration_ms / 1000.0;

	struct cn_sched sched;
	struct cn_rng rng;
	cn_sched_init(&sched, pf->rate, &pf->bursts, o->seed);
	cn_rng_seed(&rng, o->seed ^ 0x5bd1e995u);
	double start = mono(), next = cn_sched_next(&sched), last_progress = 0, last_sent = 0;
	bool sending = true, blocked = false;
	for (;;) {
		double now = mono() - start;
		while (sending && next <= now) {
			if (next >= duration || (max_req > 0 && res->sent >= max_req)) {
				sending = false;
				break;
			}
			if (in_flight >= max_in_flight) {
				if (!blocked)
					res->late++;
				blocked = true;
				break;
			}
			blocked = false;
			const struct prompt *fp = nprompts ? &prompts[(size_t)(cn_rng_uniform(&rng) * (double)nprompts)]
							   : NULL;
			double tokens = 0;
			cn_dynbuf_reset(&body);
			if (make_body(&body, pf, fp, &rng, cn_contract_tools_json(o->contract), &tokens) < 0) {
				rc = cn_fail(err, CN_EINTERNAL, "a request body over %d bytes or out of memory",
					     LOAD_BODY_MAX);
				goto out;
			}
			/* the baseline gets the same body at the same moment: first one, then the other, alternating
			 * which goes first so neither is always ahead */
			double lag = mono() - start - next;
			cn_lhist_add(&res->send_lag, lag);
			if (res2)
				cn_lhist_add(&res2->send_lag, lag);
			for (int k = 0; k < (res2 ? 2 : 1); k++) {
				bool base = res2 && ((res->sent + k) & 1);
				struct req *r = req_start(m, &pool, base ? url2 : url, pf, &body, tokens, base ? res2 : res, start,
							  o->contract);
				if (!r) {
					rc = cn_fail(err, CN_EINTERNAL, "out of memory starting a request");
					goto out;
				}
				push(&head, r);
				in_flight++;
			}
			if (res2)
				res2->sent++;
			res->sent++;
			last_sent = now;
			next = cn_sched_next(&sched);
		}
		if (sending && (next >= duration || (max_req > 0 && res->sent >= max_req)))
			sending = false;
		int running = 0;
		curl_multi_perform(m, &running);
		drain(m, &pool, &in_flight, &head);
		if (!sending && in_flight == 0)
			break;
		if (o->cancel && atomic_load(o->cancel)) {
			rc = cn_fail(err, CN_EUNAVAIL, "cancelled");
			goto out;
		}
		now = mono() - start;
		if (o->progress && o->progress_every_s > 0 && now - last_progress >= o->progress_every_s) {
			struct cn_load_progress p = { .elapsed_s = now, .duration_s = duration, .sent = res->sent,
						      .done = res->ok + res->errors, .errors = res->errors,
						      .in_flight = in_flight, .late = res->late };
			o->progress(&p, o->progress_arg);
			last_progress = now;
		}
		double wait = sending && !blocked ? (next - now) * 1000.0 : LOAD_POLL_MS;
		int ms = wait <= 0 ? 0 : wait > LOAD_POLL_MS ? LOAD_POLL_MS : (int)ceil(wait);
		if (ms > 0)
			curl_multi_poll(m, NULL, 0, ms, NULL);
	}
	for (int k = 0; k < (res2 ? 2 : 1); k++) {
		struct cn_load_result *x = k ? res2 : res;
		x->elapsed_s = mono() - start;
		x->send_span_s = last_sent > 0 ? last_sent : x->elapsed_s;
		x->achieved_rate = x->send_span_s > 0 ? (double)x->sent / x->send_span_s : 0;
	}
	*out = *res;
	if (res2 && o->baseline_out)
		*o->baseline_out = *res2;
	rc = 0;
out:
	if (m) {
		/* requests still in flight after a failure: abandon them */
		while (head) {
			struct req *r = head;
			head = r->next;
			curl_multi_remove_handle(m, r->easy);
			req_free(r);
		}
	}
	pool_free(&pool);
	if (m)
		curl_multi_cleanup(m);
	for (size_t i = 0; i < nprompts; i++)
		free(prompts[i].json);
	free(prompts);
	free(url);
	free(url2);
	free(res);
	free(res2);
	cn_dynbuf_free(&body);
	return rc;
}
