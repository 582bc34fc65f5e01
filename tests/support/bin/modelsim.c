/* modelsim: a simulated model server for tests and demos. OpenAI-style completions with log-normal latency and
 * time to first token and a configurable error rate, a vLLM-style /metrics page, and /admin to change all of it while
 * running (to inject a regression mid-rollout). By default it only records the simulated latency and answers at
 * once, so one process carries thousands of requests per second; --sleep 1 really waits (connections are suspended
 * and a timer thread resumes them, so no pool thread blocks). Binds to loopback only.
 *
 * For the load generator and pre-flight (issue 12): latency grows with the prompt's tokens (prefill_per_token; a
 * prompt's tokens are its words), prompts over long_prompt_tokens are long_prompt_factor times slower, "stream": true
 * answers in server-sent events (one `data:` chunk per token, TTFT then evenly spaced tokens, `data: [DONE]`; with
 * --sleep 1 they are really paced), the answer has at most the request's max_tokens, and a chat request with
 * "tools" gets a tool call whose arguments are malformed JSON with probability tool_call_malformed, or JSON without
 * its first required property with probability tool_call_invalid (with "stream": true the call comes as OpenAI's
 * chat.completion.chunk deltas, its arguments' text split across the events); a streamed answer is cut after its
 * first token (connection reset) with probability stream_cut.
 *
 * For unit economics (issue 14): vllm:generation_tokens_total and vllm:prompt_tokens_total count tokens,
 * generation_factor stretches the time after the first token (1.3: a release that needs 30% more time per generated
 * token), and features N labels answers feature="search" | "chat" | ... in turn on the latency histogram and the
 * token counters (the per-feature breakdown). */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "canary/bug.h"
#include "sim_model.h"

#define BODY_MAX 8192          /* admin bodies; completion bodies are read and dropped */
#define METRICS_MAX (64 * 1024)
#define PENDING_MAX 100000     /* delayed answers waiting in --sleep 1 mode */
#define TEXT_TOKENS_MAX 2048   /* tokens written into an answer's text (usage still says all of them) */
#define COMPLETION_BODY_MAX (8 * 1024 * 1024) /* a completion request (a 30,000-token prompt is about 150 KB) */
#define CHUNK_MAX 1024         /* one streamed event */
#define TOOL_PIECE_MAX 128     /* the most of a tool call's arguments one streamed event carries */

enum route {
	R_NOT_FOUND, R_BAD_METHOD, R_COMPLETION, R_CHAT, R_METRICS, R_ADMIN_GET, R_ADMIN_SET, R_ADMIN_RESET, R_HEALTH,
};

struct server;

/* One request in flight. */
struct req {
	enum route route;
	struct server *srv;
	struct MHD_Connection *conn;
	char *body;
	size_t len;
	bool too_big;
	bool suspended;    /* waiting in the timer heap */
	bool counted;      /* counted in num_requests_running */
	int status;
	double latency, ttft;
	struct sim_config cfg; /* the config this request was drawn with */
	int64_t wake_ns;
	/* what the request asked for */
	double prompt_tokens;
	long max_tokens;       /* 0: not given */
	bool stream;
	char tool[128];        /* the first tool's name, "" when the request has no tools */
	json_t *tool_params;   /* its parameters (JSON Schema), borrowed from req_doc */
	json_t *req_doc;
	bool malformed;        /* this answer's tool call is malformed */
	bool invalid;          /* this answer's tool call breaks the tool's schema */
	bool cut;              /* this streamed answer is cut after its first token */
	char *tool_args;       /* a streamed tool call's arguments (ASCII JSON text), sent in pieces; owned */
	/* streaming */
	long tokens, sent_tokens;
	int64_t start_ns;
	bool final_sent, done_sent;
	char chunk[CHUNK_MAX];
	size_t chunk_len, chunk_off;
	uint64_t id;
};

struct server {
	pthread_mutex_t mu;           /* guards cfg */
	struct sim_config cfg;
	uint64_t seed;
	_Atomic uint64_t seeds_handed;
	_Atomic uint64_t next_id;

	struct sim_hist e2e, ttft, tpot;
	_Atomic uint64_t ok, failed, gen_tokens, prompt_tokens;
	/* the per-feature breakdown (cfg.features > 0): latency histogram and token counters by feature */
	struct sim_hist e2e_f[SIM_FEATURES];
	_Atomic uint64_t gen_f[SIM_FEATURES], prompt_f[SIM_FEATURES];
	_Atomic uint64_t turn;        /* answers so far: the next feature in turn */
	_Atomic int64_t running;

	pthread_mutex_t tmu;          /* guards the timer heap and stopping */
	pthread_cond_t tcv;
	struct req **heap;
	size_t nheap;
	bool stopping;
	pthread_t timer;
};

static char *tool_arguments(const struct req *r, bool malformed);
static void read_request(struct req *r);

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Each pool thread draws from its own generator, seeded from --seed and a counter. */
static _Thread_local struct sim_rng tl_rng;
static _Thread_local bool tl_seeded;

static struct sim_rng *rng_of(struct server *s)
{
	if (!tl_seeded) {
		uint64_t k = atomic_fetch_add(&s->seeds_handed, 1);
		sim_rng_seed(&tl_rng, s->seed ^ (k * 0x9e3779b97f4a7c15ULL));
		tl_seeded = true;
	}
	return &tl_rng;
}

static void heap_swap(struct req **h, size_t a, size_t b)
{
	struct req *t = h[a];
	h[a] = h[b];
	h[b] = t;
}

static void heap_push(struct server *s, struct req *r)
{
	size_t i = s->nheap++;
	s->heap[i] = r;
	while (i > 0 && s->heap[(i - 1) / 2]->wake_ns > s->heap[i]->wake_ns) {
		heap_swap(s->heap, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static struct req *heap_pop(struct server *s)
{
	struct req *top = s->heap[0];
	s->heap[0] = s->heap[--s->nheap];
	for (size_t i = 0;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < s->nheap && s->heap[l]->wake_ns < s->heap[m]->wake_ns)
			m = l;
		if (r < s->nheap && s->heap[r]->wake_ns < s->heap[m]->wake_ns)
			m = r;
		if (m == i)
			break;
		heap_swap(s->heap, i, m);
		i = m;
	}
	return top;
}

/* Resumes delayed connections when their time comes; on stop, resumes them all. */
static void *timer_main(void *arg)
{
	struct server *s = arg;
	pthread_mutex_lock(&s->tmu);
	for (;;) {
		if (s->nheap == 0) {
			if (s->stopping)
				break;
			pthread_cond_wait(&s->tcv, &s->tmu);
			continue;
		}
		int64_t now = mono_ns(), wake = s->heap[0]->wake_ns;
		if (wake > now && !s->stopping) {
			struct timespec ts = { .tv_sec = wake / 1000000000, .tv_nsec = wake % 1000000000 };
			pthread_cond_timedwait(&s->tcv, &s->tmu, &ts);
			continue;
		}
		struct req *r = heap_pop(s);
		pthread_mutex_unlock(&s->tmu);
		MHD_resume_connection(r->conn);
		pthread_mutex_lock(&s->tmu);
	}
	pthread_mutex_unlock(&s->tmu);
	return NULL;
}

static enum MHD_Result send_text(struct MHD_Connection *c, struct server *s, int status, const char *type,
				 const char *text, size_t len, const struct req *r)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	char name[SIM_NAME_MAX];
	if (r && (r->route == R_COMPLETION || r->route == R_CHAT)) {
		char lat[64];
		snprintf(lat, sizeof lat, "%.6f", r->latency);
		MHD_add_response_header(resp, "X-Simulated-Latency", lat);
		MHD_add_response_header(resp, "X-Served-By", r->cfg.name);
	} else {
		pthread_mutex_lock(&s->mu);
		memcpy(name, s->cfg.name, sizeof name);
		pthread_mutex_unlock(&s->mu);
		MHD_add_response_header(resp, "X-Served-By", name);
	}
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, struct server *s, int status, const char *json,
				 const struct req *r)
{
	return send_text(c, s, status, "application/json", json, strlen(json), r);
}

/* Draws the outcome of one completion with the current config. */
static void draw(struct server *s, struct req *r)
{
	struct sim_rng *rng = rng_of(s);
	pthread_mutex_lock(&s->mu);
	r->cfg = s->cfg;
	pthread_mutex_unlock(&s->mu);
	r->status = sim_rng_uniform(rng) < r->cfg.error_rate ? 500 : 200;
	r->latency = sim_rng_lognormal(rng, r->cfg.latency_median, r->cfg.latency_sigma);
	r->ttft = sim_rng_lognormal(rng, r->cfg.ttft_median, r->cfg.ttft_sigma);
	if (r->ttft > 0.9 * r->latency)  /* the first token comes before the last */
		r->ttft = 0.9 * r->latency;
	sim_prompt_latency(&r->cfg, r->prompt_tokens, &r->latency, &r->ttft);
	r->tokens = r->cfg.tokens;
	if (r->max_tokens > 0 && r->max_tokens < r->tokens)
		r->tokens = r->max_tokens;
	r->malformed = r->tool[0] && sim_rng_uniform(rng) < r->cfg.tool_call_malformed;
	r->invalid = r->tool[0] && !r->malformed && sim_rng_uniform(rng) < r->cfg.tool_call_invalid;
	r->cut = r->stream && sim_rng_uniform(rng) < r->cfg.stream_cut;
}

/* Records a successful answer in the metrics. */
static void observe_ok(struct server *s, const struct req *r)
{
	long tokens = r->tokens;
	if (r->cfg.features > 0) {
		uint64_t f = atomic_fetch_add(&s->turn, 1) % (uint64_t)r->cfg.features;
		sim_hist_observe(&s->e2e_f[f], r->latency);
		atomic_fetch_add_explicit(&s->gen_f[f], (uint64_t)tokens, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->prompt_f[f], (uint64_t)r->prompt_tokens, memory_order_relaxed);
	}
	atomic_fetch_add_explicit(&s->prompt_tokens, (uint64_t)r->prompt_tokens, memory_order_relaxed);
	sim_hist_observe(&s->e2e, r->latency);
	sim_hist_observe(&s->ttft, r->ttft);
	if (tokens > 1)
		sim_hist_observe(&s->tpot, (r->latency - r->ttft) / (double)(tokens - 1));
	atomic_fetch_add_explicit(&s->gen_tokens, (uint64_t)tokens, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->ok, 1, memory_order_relaxed);
}

/* A chat answer that calls the request's first tool. */
static enum MHD_Result answer_tool_call(struct MHD_Connection *c, struct req *r, uint64_t id)
{
	char *args = tool_arguments(r, r->malformed), callid[64], cid[128];
	snprintf(callid, sizeof callid, "call_%" PRIu64, id);
	snprintf(cid, sizeof cid, "chatcmpl-%s-%" PRIu64, r->cfg.name, id);
	json_t *doc = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:n, s:[{s:s, s:s, s:{s:s, s:s}}]}, s:s}],"
				" s:{s:I, s:I, s:I}}",
				"id", cid, "object", "chat.completion", "created", (json_int_t)time(NULL),
				"model", r->cfg.name, "choices", "index", 0, "message", "role", "assistant", "content",
				"tool_calls", "id", callid, "type", "function", "function", "name", r->tool,
				"arguments", args ? args : "{}", "finish_reason", "tool_calls", "usage",
				"prompt_tokens", (json_int_t)r->prompt_tokens, "completion_tokens", (json_int_t)r->tokens,
				"total_tokens", (json_int_t)(r->prompt_tokens + (double)r->tokens));
	free(args);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (!text)
		return MHD_NO;
	enum MHD_Result ret = send_text(c, r->srv, 200, "application/json", text, strlen(text), r);
	free(text);
	return ret;
}

/* Records a finished completion in the metrics and answers it. */
static enum MHD_Result answer_completion(struct MHD_Connection *c, struct req *r)
{
	struct server *s = r->srv;
	if (r->status != 200) {
		atomic_fetch_add_explicit(&s->failed, 1, memory_order_relaxed);
		return send_json(c, s, 500,
				 "{\"object\":\"error\",\"message\":\"simulated internal error\","
				 "\"type\":\"InternalServerError\",\"param\":null,\"code\":500}", r);
	}
	long tokens = r->tokens, ptok = (long)r->prompt_tokens;
	observe_ok(s, r);
	if (r->route == R_CHAT && r->tool[0])
		return answer_tool_call(c, r, atomic_fetch_add(&s->next_id, 1));

	size_t ntext = (size_t)(tokens < TEXT_TOKENS_MAX ? tokens : TEXT_TOKENS_MAX);
	size_t cap = ntext * 4 + 1024;
	char *buf = malloc(cap), *text = malloc(ntext * 4 + 1);
	if (!buf || !text) {
		free(buf);
		free(text);
		return MHD_NO;
	}
	for (size_t i = 0; i < ntext; i++)
		memcpy(text + i * 4, " tok", 4);
	text[ntext * 4] = '\0';
	uint64_t id = atomic_fetch_add(&s->next_id, 1);
	long long created = (long long)time(NULL);
	int n;
	if (r->route == R_CHAT)
		n = snprintf(buf, cap,
			     "{\"id\":\"chatcmpl-%s-%" PRIu64 "\",\"object\":\"chat.completion\",\"created\":%lld,"
			     "\"model\":\"%s\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
			     "\"content\":\"%s\"},\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":%ld,"
			     "\"completion_tokens\":%ld,\"total_tokens\":%ld}}",
			     r->cfg.name, id, created, r->cfg.name, text + 1, ptok, tokens, tokens + ptok);
	else
		n = snprintf(buf, cap,
			     "{\"id\":\"cmpl-%s-%" PRIu64 "\",\"object\":\"text_completion\",\"created\":%lld,"
			     "\"model\":\"%s\",\"choices\":[{\"index\":0,\"text\":\"%s\",\"logprobs\":null,"
			     "\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":%ld,"
			     "\"completion_tokens\":%ld,\"total_tokens\":%ld}}",
			     r->cfg.name, id, created, r->cfg.name, text, ptok, tokens, tokens + ptok);
	enum MHD_Result ret = MHD_NO;
	if (n > 0 && (size_t)n < cap)
		ret = send_text(c, s, 200, "application/json", buf, (size_t)n, r);
	free(buf);
	free(text);
	return ret;
}

/* Writes s[0..n) into out (size at least 2n+1) as the inside of a JSON string: s is ASCII JSON text or a tool's name,
 * so quotes and backslashes are all that need escaping (anything else below 0x20 becomes a space). */
static void json_escape_ascii(const char *s, size_t n, char *out)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			out[k++] = '\\';
		out[k++] = (unsigned char)s[i] < 0x20 ? ' ' : s[i];
	}
	out[k] = '\0';
}

/* Event sent_tokens of a streamed tool call (OpenAI's chat.completion.chunk with delta.tool_calls): the first names
 * the call, and each of the r->tokens events carries its share of the arguments' text, split anywhere (inside a
 * string or between a backslash and what it escapes), as real servers do. Returns snprintf's count. */
static int tool_chunk(struct req *r, long long created)
{
	size_t len = strlen(r->tool_args), t = (size_t)r->tokens, i = (size_t)r->sent_tokens;
	size_t a = len * i / t, b = len * (i + 1) / t;
	char piece[2 * TOOL_PIECE_MAX + 1], name[2 * sizeof r->tool], head[2 * sizeof r->tool + 128] = "";
	CN_BUG_ON(b - a > TOOL_PIECE_MAX);
	json_escape_ascii(r->tool_args + a, b - a, piece);
	if (i == 0) {
		json_escape_ascii(r->tool, strlen(r->tool), name);
		snprintf(head, sizeof head, "\"id\":\"call_%" PRIu64 "\",\"type\":\"function\",", r->id);
	}
	return snprintf(r->chunk, sizeof r->chunk,
			"data: {\"id\":\"chatcmpl-%s-%" PRIu64 "\",\"object\":\"chat.completion.chunk\",\"created\":%lld,"
			"\"model\":\"%s\",\"choices\":[{\"index\":0,\"delta\":{%s\"tool_calls\":[{\"index\":0,%s"
			"\"function\":{%s%s%s\"arguments\":\"%s\"}}]},\"finish_reason\":null}]}\n\n",
			r->cfg.name, r->id, created, r->cfg.name, i == 0 ? "\"role\":\"assistant\",\"content\":null," : "",
			head, i == 0 ? "\"name\":\"" : "", i == 0 ? name : "", i == 0 ? "\"," : "", piece);
}

/* The next event of a streamed answer into r->chunk; with --sleep 1 it waits (suspended) for the token's time.
 * Returns 1 when a chunk is ready, 0 when the connection was suspended, -1 at the end of the stream. */
static int next_chunk(struct req *r)
{
	struct server *s = r->srv;
	const char *name = r->cfg.name;
	bool chat = r->route == R_CHAT;
	long long created = (long long)time(NULL);
	int n;
	if (r->done_sent)
		return -1;
	if (r->sent_tokens < r->tokens) {
		if (r->cfg.sleep) {
			double gap = r->tokens > 1 ? (r->latency - r->ttft) / (double)(r->tokens - 1) : 0;
			int64_t due = r->start_ns + (int64_t)((r->ttft + gap * (double)r->sent_tokens) * 1e9);
			if (mono_ns() < due) {
				bool waiting = false;
				pthread_mutex_lock(&s->tmu);
				if (!s->stopping && s->nheap < PENDING_MAX) {
					MHD_suspend_connection(r->conn);
					r->wake_ns = due;
					heap_push(s, r);
					pthread_cond_signal(&s->tcv);
					waiting = true;
				}
				pthread_mutex_unlock(&s->tmu);
				if (waiting)
					return 0;
			}
		}
		if (chat && r->tool_args)
			n = tool_chunk(r, created);
		else if (chat)
			n = snprintf(r->chunk, sizeof r->chunk,
				     "data: {\"id\":\"chatcmpl-%s-%" PRIu64 "\",\"object\":\"chat.completion.chunk\","
				     "\"created\":%lld,\"model\":\"%s\",\"choices\":[{\"index\":0,\"delta\":{%s"
				     "\"content\":\"%stok\"},\"finish_reason\":null}]}\n\n",
				     name, r->id, created, name, r->sent_tokens ? "" : "\"role\":\"assistant\",",
				     r->sent_tokens ? " " : "");
		else
			n = snprintf(r->chunk, sizeof r->chunk,
				     "data: {\"id\":\"cmpl-%s-%" PRIu64 "\",\"object\":\"text_completion\",\"created\":%lld,"
				     "\"model\":\"%s\",\"choices\":[{\"index\":0,\"text\":\" tok\",\"logprobs\":null,"
				     "\"finish_reason\":null}]}\n\n", name, r->id, created, name);
		r->sent_tokens++;
	} else if (!r->final_sent) {
		n = snprintf(r->chunk, sizeof r->chunk,
			     "data: {\"id\":\"%s-%s-%" PRIu64 "\",\"object\":\"%s\",\"created\":%lld,\"model\":\"%s\","
			     "\"choices\":[{\"index\":0,%s,\"finish_reason\":\"%s\"}],\"usage\":{\"prompt_tokens\":%ld,"
			     "\"completion_tokens\":%ld,\"total_tokens\":%ld}}\n\n",
			     chat ? "chatcmpl" : "cmpl", name, r->id, chat ? "chat.completion.chunk" : "text_completion",
			     created, name, chat ? "\"delta\":{}" : "\"text\":\"\"", r->tool_args ? "tool_calls" : "length",
			     (long)r->prompt_tokens, r->tokens,
			     (long)r->prompt_tokens + r->tokens);
		r->final_sent = true;
	} else {
		n = snprintf(r->chunk, sizeof r->chunk, "data: [DONE]\n\n");
		r->done_sent = true;
	}
	r->chunk_len = n > 0 && (size_t)n < sizeof r->chunk ? (size_t)n : 0;
	r->chunk_off = 0;
	return 1;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct req *r = cls;
	(void)pos;
	while (r->chunk_off >= r->chunk_len) {
		if (r->cut && r->sent_tokens >= 1)
			return MHD_CONTENT_READER_END_WITH_ERROR; /* the connection is closed mid-stream */
		int rc = next_chunk(r);
		if (rc < 0)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (rc == 0)
			return 0;
	}
	size_t n = r->chunk_len - r->chunk_off;
	if (n > max)
		n = max;
	memcpy(buf, r->chunk + r->chunk_off, n);
	r->chunk_off += n;
	return (ssize_t)n;
}

/* Starts a streamed answer: the metrics count it now, the events follow at their simulated times. */
static enum MHD_Result answer_stream(struct MHD_Connection *c, struct req *r)
{
	struct server *s = r->srv;
	if (r->route == R_CHAT && r->tool[0]) {
		/* a tool call streamed in pieces: enough events that none carries more than TOOL_PIECE_MAX */
		if (!(r->tool_args = tool_arguments(r, r->malformed)))
			return MHD_NO;
		long need = (long)((strlen(r->tool_args) + TOOL_PIECE_MAX - 1) / TOOL_PIECE_MAX);
		if (r->tokens < need)
			r->tokens = need;
	}
	observe_ok(s, r);
	r->id = atomic_fetch_add(&s->next_id, 1);
	r->start_ns = mono_ns();
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, r, NULL);
	if (!resp)
		return MHD_NO;
	char lat[64];
	snprintf(lat, sizeof lat, "%.6f", r->latency);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(resp, "X-Simulated-Latency", lat);
	MHD_add_response_header(resp, "X-Served-By", r->cfg.name);
	enum MHD_Result ret = MHD_queue_response(c, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

static int put(char *buf, size_t size, size_t *off, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int put(char *buf, size_t size, size_t *off, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf + *off, size - *off, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size - *off)
		return -1;
	*off += (size_t)n;
	return 0;
}

/* A token counter: one series per feature when answers are labelled (features > 0), else the total. */
static int put_tokens(char *buf, size_t *off, const char *name, const char *help, const char *labels, long features,
		      _Atomic uint64_t *per_feature, _Atomic uint64_t *total)
{
	int rc = put(buf, METRICS_MAX, off, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (long f = 0; f < features; f++)
		rc |= put(buf, METRICS_MAX, off, "%s{%s,feature=\"%s\"} %" PRIu64 "\n", name, labels, sim_feature_names[f],
			  atomic_load(&per_feature[f]));
	if (features <= 0)
		rc |= put(buf, METRICS_MAX, off, "%s{%s} %" PRIu64 "\n", name, labels, atomic_load(total));
	return rc;
}

static enum MHD_Result answer_metrics(struct MHD_Connection *c, struct server *s, const struct req *r)
{
	char *buf = malloc(METRICS_MAX);
	char name[SIM_NAME_MAX], labels[SIM_NAME_MAX + 32];
	size_t off = 0;
	if (!buf)
		return MHD_NO;
	pthread_mutex_lock(&s->mu);
	memcpy(name, s->cfg.name, sizeof name);
	bool garbage = s->cfg.metrics_garbage != 0;
	long features = s->cfg.features;
	pthread_mutex_unlock(&s->mu);
	if (garbage) {
		/* fault injection: a page a scraper must refuse (a bad number in a wanted series) */
		static const char page[] = "# TYPE http_requests_total counter\nhttp_requests_total{status=\"200\"} 12abc\n";
		free(buf);
		return send_text(c, s, 200, "text/plain; version=0.0.4", page, sizeof page - 1, r);
	}
	snprintf(labels, sizeof labels, "model_name=\"%s\"", name);
	/* histograms first, counters after, so a scrape never shows more observations than counted requests */
	int rc = 0;
	if (features > 0) {
		/* by feature: each series once, so the sums over the page are the totals */
		char fl[SIM_NAME_MAX + 64];
		for (long f = 0; f < features; f++) {
			snprintf(fl, sizeof fl, "%s,feature=\"%s\"", labels, sim_feature_names[f]);
			rc |= sim_hist_render(&s->e2e_f[f], "vllm:e2e_request_latency_seconds",
					      "Histogram of e2e request latency in seconds.", fl, buf, METRICS_MAX, &off);
		}
	} else {
		rc |= sim_hist_render(&s->e2e, "vllm:e2e_request_latency_seconds",
				      "Histogram of e2e request latency in seconds.", labels, buf, METRICS_MAX, &off);
	}
	rc |= sim_hist_render(&s->ttft, "vllm:time_to_first_token_seconds",
			      "Histogram of time to first token in seconds.", labels, buf, METRICS_MAX, &off);
	rc |= sim_hist_render(&s->tpot, "vllm:time_per_output_token_seconds",
			      "Histogram of time per output token in seconds.", labels, buf, METRICS_MAX, &off);
	uint64_t ok = atomic_load(&s->ok), failed = atomic_load(&s->failed);
	int64_t running = atomic_load(&s->running);
	rc |= put(buf, METRICS_MAX, &off,
		  "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
		  "# TYPE vllm:num_requests_running gauge\n"
		  "vllm:num_requests_running{%s} %" PRId64 "\n"
		  "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
		  "# TYPE vllm:num_requests_waiting gauge\n"
		  "vllm:num_requests_waiting{%s} 0\n"
		  "# HELP vllm:request_success_total Count of successfully processed requests.\n"
		  "# TYPE vllm:request_success_total counter\n"
		  "vllm:request_success_total{finished_reason=\"length\",%s} %" PRIu64 "\n"
		  "# HELP http_requests_total Total number of completion requests by status code.\n"
		  "# TYPE http_requests_total counter\n"
		  "http_requests_total{status=\"200\"} %" PRIu64 "\n"
		  "http_requests_total{status=\"500\"} %" PRIu64 "\n",
		  labels, running < 0 ? 0 : running, labels, labels, ok, ok, failed);
	rc |= put_tokens(buf, &off, "vllm:generation_tokens_total", "Number of generation tokens processed.", labels,
			 features, s->gen_f, &s->gen_tokens);
	rc |= put_tokens(buf, &off, "vllm:prompt_tokens_total", "Number of prefill tokens processed.", labels, features,
			 s->prompt_f, &s->prompt_tokens);
	enum MHD_Result ret = rc ? send_json(c, s, 500, "{\"error\":\"metrics page too large\"}", r)
				 : send_text(c, s, 200, "text/plain; version=0.0.4; charset=utf-8", buf, off, r);
	free(buf);
	return ret;
}

static enum MHD_Result answer_config(struct MHD_Connection *c, struct server *s, int status, const struct req *r)
{
	char json[1024];
	pthread_mutex_lock(&s->mu);
	int n = sim_config_json(&s->cfg, json, sizeof json);
	pthread_mutex_unlock(&s->mu);
	if (n < 0)
		return send_json(c, s, 500, "{\"error\":\"config too long\"}", r);
	return send_json(c, s, status, json, r);
}

/* Escapes a message for a JSON string (drops quotes and backslashes: messages are ours). */
static void json_safe(char *dst, size_t size, const char *src)
{
	size_t j = 0;
	for (size_t i = 0; src[i] && j + 1 < size; i++)
		if (src[i] != '"' && src[i] != '\\' && (unsigned char)src[i] >= 0x20)
			dst[j++] = src[i];
	dst[j] = '\0';
}

static enum MHD_Result answer_admin_set(struct MHD_Connection *c, struct server *s, struct req *r)
{
	struct cn_err err = { 0 };
	if (r->too_big) {
		return send_json(c, s, 413, "{\"error\":\"admin body too large\"}", r);
	}
	pthread_mutex_lock(&s->mu);
	struct sim_config cfg = s->cfg;
	char oldname[SIM_NAME_MAX];
	memcpy(oldname, cfg.name, sizeof oldname);
	int rc = sim_config_apply(&cfg, r->body ? r->body : "", r->len, &err);
	if (rc == 0 && strcmp(cfg.name, oldname) != 0)
		rc = cn_fail(&err, CN_EINPUT, "name '%s': cannot be changed while running", cfg.name);
	if (rc == 0)
		s->cfg = cfg;
	pthread_mutex_unlock(&s->mu);
	if (rc < 0) {
		char msg[CN_ERR_MSG_MAX], json[CN_ERR_MSG_MAX + 32];
		json_safe(msg, sizeof msg, err.msg);
		snprintf(json, sizeof json, "{\"error\":\"%s\"}", msg);
		return send_json(c, s, 400, json, r);
	}
	return answer_config(c, s, 200, r);
}

static enum route route_of(const char *method, const char *url)
{
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0, putm = strcmp(method, "PUT") == 0;
	if (strcmp(url, "/v1/completions") == 0)
		return post ? R_COMPLETION : R_BAD_METHOD;
	if (strcmp(url, "/v1/chat/completions") == 0)
		return post ? R_CHAT : R_BAD_METHOD;
	if (strcmp(url, "/") == 0)
		return get || post ? R_COMPLETION : R_BAD_METHOD;
	if (strcmp(url, "/metrics") == 0)
		return get ? R_METRICS : R_BAD_METHOD;
	if (strcmp(url, "/healthz") == 0)
		return get ? R_HEALTH : R_BAD_METHOD;
	if (strcmp(url, "/admin") == 0 || strcmp(url, "/admin/config") == 0)
		return get ? R_ADMIN_GET : post || putm ? R_ADMIN_SET : R_BAD_METHOD;
	if (strcmp(url, "/admin/reset") == 0)
		return post ? R_ADMIN_RESET : R_BAD_METHOD;
	return R_NOT_FOUND;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct server *s = cls;
	struct req *r = *con_cls;
	(void)version;

	if (!r) {
		r = calloc(1, sizeof *r);
		if (!r)
			return MHD_NO;
		r->srv = s;
		r->conn = c;
		r->route = route_of(method, url);
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_size) {
		bool keep = r->route == R_ADMIN_SET || r->route == R_COMPLETION || r->route == R_CHAT;
		size_t cap = r->route == R_ADMIN_SET ? BODY_MAX : COMPLETION_BODY_MAX;
		if (keep && !r->too_big) {
			if (r->len + *upload_size > cap) {
				r->too_big = true;
			} else {
				char *nb = realloc(r->body, r->len + *upload_size + 1);
				if (!nb)
					return MHD_NO;
				memcpy(nb + r->len, upload, *upload_size);
				r->body = nb;
				r->len += *upload_size;
				r->body[r->len] = '\0';
			}
		}
		*upload_size = 0;
		return MHD_YES;
	}

	switch (r->route) {
	case R_COMPLETION:
	case R_CHAT:
		if (r->suspended)  /* resumed by the timer: the simulated time has passed */
			return answer_completion(c, r);
		if (r->too_big)
			return send_json(c, s, 413, "{\"error\":\"request body too large\"}", r);
		read_request(r);
		draw(s, r);
		atomic_fetch_add(&s->running, 1);
		r->counted = true;
		if (r->stream && r->status == 200)
			return answer_stream(c, r);
		if (r->cfg.sleep) {
			pthread_mutex_lock(&s->tmu);
			if (!s->stopping && s->nheap < PENDING_MAX) {
				MHD_suspend_connection(c);
				r->suspended = true;
				r->wake_ns = mono_ns() + (int64_t)(r->latency * 1e9);
				heap_push(s, r);
				pthread_cond_signal(&s->tcv);
			}
			pthread_mutex_unlock(&s->tmu);
			if (r->suspended)
				return MHD_YES;
		}
		return answer_completion(c, r);
	case R_METRICS:
		return answer_metrics(c, s, r);
	case R_HEALTH:
		return send_text(c, s, 200, "text/plain", "ok\n", 3, r);
	case R_ADMIN_GET:
		return answer_config(c, s, 200, r);
	case R_ADMIN_SET:
		return answer_admin_set(c, s, r);
	case R_ADMIN_RESET:
		sim_hist_reset(&s->e2e);
		sim_hist_reset(&s->ttft);
		sim_hist_reset(&s->tpot);
		for (int f = 0; f < SIM_FEATURES; f++) {
			sim_hist_reset(&s->e2e_f[f]);
			atomic_store(&s->gen_f[f], 0);
			atomic_store(&s->prompt_f[f], 0);
		}
		atomic_store(&s->ok, 0);
		atomic_store(&s->failed, 0);
		atomic_store(&s->gen_tokens, 0);
		atomic_store(&s->prompt_tokens, 0);
		return send_json(c, s, 200, "{\"reset\":true}", r);
	case R_BAD_METHOD:
		return send_json(c, s, 405, "{\"error\":\"method not allowed\"}", r);
	case R_NOT_FOUND:
	default:
		return send_json(c, s, 404, "{\"error\":\"not found\"}", r);
	}
}

/* Counts words as tokens. */
static double count_words(const char *t)
{
	double n = 0;
	bool in = false;
	for (; t && *t; t++) {
		bool sp = *t == ' ' || *t == '\n' || *t == '\t' || *t == '\r';
		if (!sp && !in)
			n++;
		in = !sp;
	}
	return n;
}

/* Reads what the completion request asks for: prompt tokens, max_tokens, stream, tools. A body that is not JSON
 * (the old GET / form) asks for nothing. */
static void read_request(struct req *r)
{
	json_error_t je;
	if (!r->body || r->len == 0)
		return;
	json_t *doc = json_loadb(r->body, r->len, 0, &je);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return;
	}
	r->req_doc = doc;
	json_t *prompt = json_object_get(doc, "prompt"), *msgs = json_object_get(doc, "messages");
	if (json_is_string(prompt))
		r->prompt_tokens = count_words(json_string_value(prompt));
	else if (json_is_array(prompt))
		for (size_t i = 0; i < json_array_size(prompt); i++)
			r->prompt_tokens += count_words(json_string_value(json_array_get(prompt, i)));
	for (size_t i = 0; json_is_array(msgs) && i < json_array_size(msgs); i++)
		r->prompt_tokens += count_words(json_string_value(json_object_get(json_array_get(msgs, i), "content")));
	json_t *mt = json_object_get(doc, "max_tokens");
	if (!mt)
		mt = json_object_get(doc, "max_completion_tokens");
	if (json_is_integer(mt) && json_integer_value(mt) > 0)
		r->max_tokens = (long)(json_integer_value(mt) < 100000 ? json_integer_value(mt) : 100000);
	r->stream = json_is_true(json_object_get(doc, "stream"));
	json_t *tools = json_object_get(doc, "tools");
	if (r->route == R_CHAT && json_is_array(tools) && json_array_size(tools) > 0) {
		json_t *fn = json_object_get(json_array_get(tools, 0), "function");
		const char *name = json_string_value(json_object_get(fn, "name"));
		snprintf(r->tool, sizeof r->tool, "%s", name ? name : "tool");
		r->tool_params = json_object_get(fn, "parameters");
	}
}

/* Arguments for a call of the request's first tool: each required property with a value of its declared type (the
 * first enum value when there is one); or, malformed, a cut-off JSON text. Returns a new string; caller frees. */
static char *tool_arguments(const struct req *r, bool malformed)
{
	if (malformed)
		return strdup("{\"location\": \"Par");
	json_t *args = json_object();
	json_t *props = json_object_get(r->tool_params, "properties");
	json_t *req = json_object_get(r->tool_params, "required");
	/* invalid: the first required property is left out, so the arguments are JSON but break the schema */
	for (size_t i = r->invalid ? 1 : 0; args && json_is_array(req) && i < json_array_size(req); i++) {
		const char *k = json_string_value(json_array_get(req, i));
		json_t *ps = json_object_get(props, k ? k : "");
		const char *type = json_string_value(json_object_get(ps, "type"));
		json_t *en = json_object_get(ps, "enum"), *v;
		if (!k)
			continue;
		if (json_is_array(en) && json_array_size(en) > 0)
			v = json_deep_copy(json_array_get(en, 0));
		else if (type && strcmp(type, "integer") == 0)
			v = json_integer(1);
		else if (type && strcmp(type, "number") == 0)
			v = json_real(1.5);
		else if (type && strcmp(type, "boolean") == 0)
			v = json_true();
		else if (type && strcmp(type, "array") == 0)
			v = json_array();
		else if (type && strcmp(type, "object") == 0)
			v = json_object();
		else
			v = json_string("x");
		json_object_set_new(args, k, v);
	}
	char *text = args ? json_dumps(args, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(args);
	return text;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct server *s = cls;
	struct req *r = *con_cls;
	(void)c;
	(void)toe;
	if (!r)
		return;
	if (r->counted)
		atomic_fetch_sub(&s->running, 1);
	free(r->body);
	free(r->tool_args);
	json_decref(r->req_doc);
	free(r);
	*con_cls = NULL;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: modelsim --port N [--host 127.0.0.1] [--name blue] [--latency-median 0.2] "
		   "[--latency-sigma 0.3]\n"
		   "                [--ttft-median 0.05] [--ttft-sigma 0.3] [--error-rate 0.005] [--tokens 32] "
		   "[--sleep 0|1]\n"
		   "                [--generation-factor 1] [--features 0..4] [--seed S] [--threads 2]\n"
		   "  --port 0 picks a free port; the ready line says which.\n");
}

/* Parses a whole number in [min, max]; returns 0 or -1. */
static int parse_long(const char *s, long min, long max, long *out)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	struct server *s = calloc(1, sizeof *s);
	struct MHD_Daemon *d = NULL;
	const char *host = "127.0.0.1";
	long port = -1, threads = 2, seed = -1;
	bool timer_started = false;
	int rc = 1;
	struct cn_err err = { 0 };
	sigset_t sigs;

	if (!s) {
		fprintf(stderr, "modelsim: out of memory\n");
		return 70;
	}
	sim_config_defaults(&s->cfg);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			rc = 0;
			goto out;
		}
		if (strncmp(a, "--", 2) != 0 || i + 1 >= argc) {
			fprintf(stderr, "modelsim: argument '%s': expected --option value (see --help)\n", a);
			rc = 64;
			goto out;
		}
		const char *v = argv[++i];
		if (strcmp(a, "--port") == 0) {
			if (parse_long(v, 0, 65535, &port) < 0) {
				fprintf(stderr, "modelsim: --port '%s': expected 0 to 65535\n", v);
				rc = 64;
				goto out;
			}
		} else if (strcmp(a, "--host") == 0) {
			host = strcmp(v, "localhost") == 0 ? "127.0.0.1" : v;
		} else if (strcmp(a, "--threads") == 0) {
			if (parse_long(v, 1, 64, &threads) < 0) {
				fprintf(stderr, "modelsim: --threads '%s': expected 1 to 64\n", v);
				rc = 64;
				goto out;
			}
		} else if (strcmp(a, "--seed") == 0) {
			if (parse_long(v, 0, LONG_MAX, &seed) < 0) {
				fprintf(stderr, "modelsim: --seed '%s': expected a non-negative whole number\n", v);
				rc = 64;
				goto out;
			}
		} else if (sim_config_set(&s->cfg, a + 2, v, &err) < 0) {
			fprintf(stderr, "modelsim: %s: %s (see --help)\n", a, err.msg);
			rc = 64;
			goto out;
		}
	}
	if (port < 0) {
		fprintf(stderr, "modelsim: --port is required (0 picks a free one)\n");
		rc = 64;
		goto out;
	}
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 || (ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "modelsim: --host '%s': only loopback addresses (127.0.0.0/8) are allowed\n", host);
		rc = 64;
		goto out;
	}
	s->seed = seed >= 0 ? (uint64_t)seed : (uint64_t)mono_ns() ^ ((uint64_t)getpid() << 32);
	sim_hist_init(&s->e2e, sim_vllm_e2e_buckets, sim_vllm_e2e_nbuckets);
	sim_hist_init(&s->ttft, sim_vllm_ttft_buckets, sim_vllm_ttft_nbuckets);
	sim_hist_init(&s->tpot, sim_vllm_tpot_buckets, sim_vllm_tpot_nbuckets);
	for (int f = 0; f < SIM_FEATURES; f++)
		sim_hist_init(&s->e2e_f[f], sim_vllm_e2e_buckets, sim_vllm_e2e_nbuckets);
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->tmu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->tcv, &ca);
	pthread_condattr_destroy(&ca);
	s->heap = calloc(PENDING_MAX, sizeof *s->heap);
	if (!s->heap) {
		fprintf(stderr, "modelsim: out of memory\n");
		rc = 70;
		goto out;
	}

	/* block the stop signals in every thread; main waits for them with sigwait */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (pthread_create(&s->timer, NULL, timer_main, s) != 0) {
		fprintf(stderr, "modelsim: cannot start the timer thread\n");
		rc = 70;
		goto out;
	}
	timer_started = true;

	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
				     MHD_USE_TURBO,
			     (uint16_t)port, NULL, NULL, handle, s,
			     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
			     MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)threads,
			     MHD_OPTION_CONNECTION_LIMIT, (unsigned int)4096,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
			     MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024,
			     MHD_OPTION_NOTIFY_COMPLETED, completed, s,
			     MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "modelsim: cannot listen on %s:%ld (port in use?): pick another --port\n", host, port);
		rc = 69;
		goto out;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	unsigned bound = info ? info->port : (unsigned)port;
	printf("modelsim %s listening on %s:%u\n", s->cfg.name, host, bound);
	fflush(stdout);

	int sig = 0;
	while (sigwait(&sigs, &sig) != 0)
		;
	rc = 0;
out:
	if (timer_started) {
		pthread_mutex_lock(&s->tmu);
		s->stopping = true;
		pthread_cond_signal(&s->tcv);
		pthread_mutex_unlock(&s->tmu);
		pthread_join(s->timer, NULL);
	}
	if (d)
		MHD_stop_daemon(d);
	if (s) {
		free(s->heap);
		free(s);
	}
	return rc;
}
