/* A tiny HTTP server on 127.0.0.1 (libmicrohttpd) for tests: answers every request with a set reply or through a
 * handler, and can be slow, truncate its body, or stream a huge one. Any test may reuse it. */
#ifndef CANARY_HTTPD_FIXTURE_H
#define CANARY_HTTPD_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "canary/err.h"

struct httpd_fixture;

struct httpd_request {
	const char *method;
	const char *url;       /* the path, without the query string */
	void *conn;            /* the libmicrohttpd connection, for httpd_request_arg */
};

struct httpd_reply {
	int status;               /* 0: 200 */
	const char *content_type; /* NULL: the Prometheus text format's */
	const char *body;         /* copied by the fixture; NULL: empty */
	size_t len;               /* 0: strlen(body) */
	size_t total;             /* > len: the body is repeated up to total bytes (a huge page) */
	bool truncate;            /* announce total bytes, send the first len, then cut the connection */
	int delay_ms;             /* wait this long before answering */
};

/* Called on the server's thread for each request; fills reply (zeroed first). reply->body must stay valid until
 * the handler returns. */
typedef void (*httpd_handler_fn)(void *arg, const struct httpd_request *req, struct httpd_reply *reply);

/* Returns a decoded query-string argument of req, or NULL. */
const char *httpd_request_arg(const struct httpd_request *req, const char *name);

/* Starts a server on 127.0.0.1 on a free port, answering 200 with an empty body. Returns it (stop it with
 * httpd_fixture_stop) or NULL with err set. */
struct httpd_fixture *httpd_fixture_start(struct cn_err *err);

/* Sets the reply to every following request (copied); clears any handler. Returns 0 or -1 (no memory). */
int httpd_fixture_set_reply(struct httpd_fixture *f, const struct httpd_reply *reply);

/* Answers every following request through fn(arg, ...) instead of the set reply. */
void httpd_fixture_set_handler(struct httpd_fixture *f, httpd_handler_fn fn, void *arg);

/* The port, and the base URL "http://127.0.0.1:PORT" (owned by the fixture). */
unsigned httpd_fixture_port(const struct httpd_fixture *f);
const char *httpd_fixture_url(const struct httpd_fixture *f);

/* How many requests were answered and TCP connections accepted so far. */
unsigned httpd_fixture_requests(const struct httpd_fixture *f);
unsigned httpd_fixture_connections(const struct httpd_fixture *f);

/* The query string argument "query" of the last request (copied, "" if none), for tests of API clients. */
void httpd_fixture_last_query(struct httpd_fixture *f, char *buf, size_t size);

/* Stops the server (slow replies are cut short) and frees it; accepts NULL. */
void httpd_fixture_stop(struct httpd_fixture *f);

/* Returns a loopback port that nothing listens on, reserved for this process until it exits so that no concurrent
 * test starts a server there (to test refused connections); or -1. */
int httpd_free_port(void);

#endif
