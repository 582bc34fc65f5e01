/* A tiny HTTP server on 127.0.0.1 for tests, built on libmicrohttpd with a thread per connection. */
#include "httpd_fixture.h"
#include "port_fixture.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROM_TEXT "text/plain; version=0.0.4; charset=utf-8"

struct httpd_fixture {
	struct MHD_Daemon *d;
	unsigned port;
	char url[64];
	pthread_mutex_t mu;
	struct httpd_reply reply;    /* body owned (copied) */
	char *body;
	httpd_handler_fn fn;
	void *fn_arg;
	char last_query[4096];
	atomic_uint requests, connections;
	atomic_bool stopping;
};

struct stream {
	char *body;
	size_t len, total;
	bool truncate;
};

const char *httpd_request_arg(const struct httpd_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *s = cls;
	size_t n = 0;

	if (s->truncate && pos >= s->len)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (pos >= s->total)
		return MHD_CONTENT_READER_END_OF_STREAM;
	while (n < max && pos + n < s->total && !(s->truncate && pos + n >= s->len)) {
		size_t off = (size_t)((pos + n) % s->len);
		size_t k = s->len - off;
		if (k > max - n)
			k = max - n;
		if (k > s->total - (pos + n))
			k = (size_t)(s->total - (pos + n));
		memcpy(buf + n, s->body + off, k);
		n += k;
	}
	return (ssize_t)n;
}

static void stream_free(void *cls)
{
	struct stream *s = cls;
	free(s->body);
	free(s);
}

static void notify(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode toe)
{
	struct httpd_fixture *f = cls;
	(void)c;
	(void)socket_context;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		atomic_fetch_add(&f->connections, 1);
}

static void pause_ms(struct httpd_fixture *f, int ms)
{
	for (int i = 0; i < ms / 10 && !atomic_load(&f->stopping); i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	static int marker;
	struct httpd_fixture *f = cls;
	struct httpd_request req = { method, url, conn };
	struct httpd_reply r;
	struct MHD_Response *resp = NULL;
	const char *q;
	enum MHD_Result ret;
	size_t len;

	(void)version;
	(void)upload;
	if (*con_cls == NULL) {
		*con_cls = &marker;
		return MHD_YES;
	}
	*upload_size = 0;
	q = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "query");
	pthread_mutex_lock(&f->mu);
	snprintf(f->last_query, sizeof f->last_query, "%s", q ? q : "");
	if (f->fn) {
		memset(&r, 0, sizeof r);
		f->fn(f->fn_arg, &req, &r);
	} else {
		r = f->reply;
	}
	len = r.body ? (r.len ? r.len : strlen(r.body)) : 0;
	if (r.total > len && len > 0) {
		struct stream *s = calloc(1, sizeof *s);
		if (s && (s->body = malloc(len))) {
			memcpy(s->body, r.body, len);
			s->len = len;
			s->total = r.total;
			s->truncate = r.truncate;
			resp = MHD_create_response_from_callback(r.total, 64 * 1024, stream_read, s, stream_free);
		} else {
			free(s);
		}
	} else {
		resp = MHD_create_response_from_buffer(len, (void *)(r.body ? r.body : ""), MHD_RESPMEM_MUST_COPY);
	}
	pthread_mutex_unlock(&f->mu);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", r.content_type ? r.content_type : PROM_TEXT);
	if (r.delay_ms > 0)
		pause_ms(f, r.delay_ms);
	atomic_fetch_add(&f->requests, 1);
	ret = MHD_queue_response(conn, r.status ? (unsigned)r.status : 200u, resp);
	MHD_destroy_response(resp);
	return ret;
}

struct httpd_fixture *httpd_fixture_start(struct cn_err *err)
{
	struct httpd_fixture *f = calloc(1, sizeof *f);
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *info;

	if (!f) {
		cn_fail(err, CN_EINTERNAL, "out of memory starting the http fixture");
		return NULL;
	}
	pthread_mutex_init(&f->mu, NULL);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = 0;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL,
				answer, f, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				MHD_OPTION_NOTIFY_CONNECTION, notify, f, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
				MHD_OPTION_END);
	if (!f->d) {
		cn_fail(err, CN_EUNAVAIL, "cannot start the http fixture on 127.0.0.1");
		goto out;
	}
	info = MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT);
	if (!info || info->port == 0) {
		cn_fail(err, CN_EUNAVAIL, "the http fixture has no port");
		goto out;
	}
	f->port = info->port;
	snprintf(f->url, sizeof f->url, "http://127.0.0.1:%u", f->port);
	return f;
out:
	httpd_fixture_stop(f);
	return NULL;
}

int httpd_fixture_set_reply(struct httpd_fixture *f, const struct httpd_reply *reply)
{
	size_t len = reply->body ? (reply->len ? reply->len : strlen(reply->body)) : 0;
	char *body = malloc(len + 1);

	if (!body)
		return -1;
	if (len)
		memcpy(body, reply->body, len);
	body[len] = '\0';
	pthread_mutex_lock(&f->mu);
	free(f->body);
	f->body = body;
	f->reply = *reply;
	f->reply.body = body;
	f->reply.len = len;
	f->fn = NULL;
	pthread_mutex_unlock(&f->mu);
	return 0;
}

void httpd_fixture_set_handler(struct httpd_fixture *f, httpd_handler_fn fn, void *arg)
{
	pthread_mutex_lock(&f->mu);
	f->fn = fn;
	f->fn_arg = arg;
	pthread_mutex_unlock(&f->mu);
}

unsigned httpd_fixture_port(const struct httpd_fixture *f)
{
	return f->port;
}

const char *httpd_fixture_url(const struct httpd_fixture *f)
{
	return f->url;
}

unsigned httpd_fixture_requests(const struct httpd_fixture *f)
{
	return atomic_load(&f->requests);
}

unsigned httpd_fixture_connections(const struct httpd_fixture *f)
{
	return atomic_load(&f->connections);
}

void httpd_fixture_last_query(struct httpd_fixture *f, char *buf, size_t size)
{
	pthread_mutex_lock(&f->mu);
	snprintf(buf, size, "%s", f->last_query);
	pthread_mutex_unlock(&f->mu);
}

void httpd_fixture_stop(struct httpd_fixture *f)
{
	if (!f)
		return;
	atomic_store(&f->stopping, true);
	if (f->d)
		MHD_stop_daemon(f->d);
	pthread_mutex_destroy(&f->mu);
	free(f->body);
	free(f);
}

int httpd_free_port(void)
{
	return port_reserve(NULL); /* reserved until this process exits: nobody else starts listening there */
}
