/* Webhook POSTs in flight on one libcurl multi handle: each bounded by its own timeout, none waiting for another. */
#include "canary/notify.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/bug.h"
#include "canary/clock.h"
#include "canary/hmac.h"

struct post {
	CURL *easy;
	struct curl_slist *headers;
	char *body;
	int64_t tag;
	int64_t started_ms, ended_ms;
	char errbuf[CURL_ERROR_SIZE];
	struct post *next;
};

struct cn_notify_group {
	CURLM *multi;
	struct post *active;   /* in flight */
	struct post *done;     /* finished, not yet handed out (oldest first) */
	size_t inflight;
};

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n; /* the receiver's answer does not matter beyond its status */
}

static void post_free(struct post *p)
{
	if (!p)
		return;
	if (p->easy)
		curl_easy_cleanup(p->easy);
	curl_slist_free_all(p->headers);
	free(p->body);
	free(p);
}

struct cn_notify_group *cn_notify_group_new(struct cn_err *err)
{
	struct cn_notify_group *g = calloc(1, sizeof *g);
	if (!g) {
		cn_fail(err, CN_EINTERNAL, "out of memory");
		return NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(g->multi = curl_multi_init())) {
		cn_fail(err, CN_EINTERNAL, "libcurl: cannot initialise");
		free(g);
		return NULL;
	}
	return g;
}

void cn_notify_group_free(struct cn_notify_group *g)
{
	if (!g)
		return;
	for (struct post *p = g->active, *n; p; p = n) {
		n = p->next;
		curl_multi_remove_handle(g->multi, p->easy);
		post_free(p);
	}
	for (struct post *p = g->done, *n; p; p = n) {
		n = p->next;
		post_free(p);
	}
	curl_multi_cleanup(g->multi);
	curl_global_cleanup();
	free(g);
}

static struct curl_slist *header(struct curl_slist *h, const char *name, const char *value, bool *ok)
{
	char line[512];
	snprintf(line, sizeof line, "%s: %s", name, value);
	struct curl_slist *n = curl_slist_append(h, line);
	if (!n)
		*ok = false;
	return n ? n : h;
}

int cn_notify_group_add(struct cn_notify_group *g, const struct cn_notify_request *req, struct cn_err *err)
{
	CN_BUG_ON(!g || !req || !req->url || !req->body || !req->key || !req->event);
	struct post *p = calloc(1, sizeof *p);
	bool ok = true;
	if (!p || !(p->body = strdup(req->body)) || !(p->easy = curl_easy_init())) {
		post_free(p);
		return cn_fail(err, CN_EINTERNAL, "out of memory starting a notification");
	}
	p->tag = req->tag;
	p->headers = header(p->headers, "Content-Type", "application/json", &ok);
	p->headers = header(p->headers, "Idempotency-Key", req->key, &ok);
	p->headers = header(p->headers, "X-Canary-Event", req->event, &ok);
	p->headers = header(p->headers, "Expect", "", &ok); /* no 100-continue round trip */
	if (req->secret && req->secret_len > 0) {
		char hex[CN_SHA256_HEX_LEN], sig[80];
		cn_hmac_sha256_hex(req->secret, req->secret_len, p->body, strlen(p->body), hex);
		snprintf(sig, sizeof sig, "sha256=%s", hex);
		p->headers = header(p->headers, "X-Canary-Signature", sig, &ok);
	}
	long timeout = req->timeout_ms > 0 ? (long)req->timeout_ms : 5000;
	CURL *c = p->easy;
	if (!ok || curl_easy_setopt(c, CURLOPT_URL, req->url) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK) {
		post_free(p);
		return cn_fail(err, ok ? CN_EINPUT : CN_EINTERNAL, "cannot POST to '%s'", req->url);
	}
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, p->body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(p->body));
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, p->headers);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "canaryd-notify/0.1");
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, p->errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_PRIVATE, p);
	CURLMcode mc = curl_multi_add_handle(g->multi, c);
	if (mc != CURLM_OK) {
		post_free(p);
		return cn_fail(err, CN_EINTERNAL, "libcurl: %s", curl_multi_strerror(mc));
	}
	p->started_ms = cn_mono_ms();
	p->next = g->active;
	g->active = p;
	g->inflight++;
	return 0;
}

/* Moves p from the active list to the end of the done list. */
static void finish(struct cn_notify_group *g, struct post *p)
{
	struct post **pp = &g->active;
	while (*pp && *pp != p)
		pp = &(*pp)->next;
	if (*pp)
		*pp = p->next;
	p->next = NULL;
	pp = &g->done;
	while (*pp)
		pp = &(*pp)->next;
	*pp = p;
	g->inflight--;
}

int cn_notify_group_wait(struct cn_notify_group *g, int fd, int timeout_ms, bool *fd_ready, struct cn_err *err)
{
	struct curl_waitfd extra = { .fd = fd, .events = CURL_WAIT_POLLIN };
	int numfds = 0, running = 0;
	*fd_ready = false;
	CURLMcode mc = curl_multi_poll(g->multi, fd >= 0 ? &extra : NULL, fd >= 0 ? 1 : 0, timeout_ms, &numfds);
	if (mc != CURLM_OK)
		return cn_fail(err, CN_EINTERNAL, "libcurl: %s", curl_multi_strerror(mc));
	if (fd >= 0 && (extra.revents & CURL_WAIT_POLLIN))
		*fd_ready = true;
	if ((mc = curl_multi_perform(g->multi, &running)) != CURLM_OK)
		return cn_fail(err, CN_EINTERNAL, "libcurl: %s", curl_multi_strerror(mc));
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(g->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct post *p = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&p);
		curl_multi_remove_handle(g->multi, msg->easy_handle);
		if (!p)
			continue;
		if (msg->data.result == CURLE_OK)
			p->errbuf[0] = '\0';
		else if (!p->errbuf[0])
			snprintf(p->errbuf, sizeof p->errbuf, "%s", curl_easy_strerror(msg->data.result));
		p->ended_ms = cn_mono_ms();
		finish(g, p);
	}
	return 0;
}

int cn_notify_group_next(struct cn_notify_group *g, struct cn_notify_result *out)
{
	struct post *p = g->done;
	if (!p)
		return 0;
	g->done = p->next;
	long code = 0;
	curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &code);
	memset(out, 0, sizeof *out);
	out->tag = p->tag;
	out->status = (int)code;
	out->elapsed_ms = p->ended_ms - p->started_ms;
	if (p->errbuf[0])
		snprintf(out->error, sizeof out->error, "%s", p->errbuf);
	else if (code < 200 || code > 299)
		snprintf(out->error, sizeof out->error, "the receiver answered HTTP %ld", code);
	out->delivered = !p->errbuf[0] && code >= 200 && code <= 299;
	post_free(p);
	return 1;
}

size_t cn_notify_group_inflight(const struct cn_notify_group *g)
{
	return g->inflight;
}
