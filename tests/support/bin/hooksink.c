/* hooksink: a webhook receiver for tests and the notification bench. Records every POST it gets as one JSON line
 * in --log (wall time in ms, the status it answered, Idempotency-Key, X-Canary-Event, X-Canary-Signature, whether
 * the signature verifies under --secret, and the body), and can be told at run time to fail, hang or drop:
 *   POST /admin?mode=ok            answer 200 (the default)
 *   POST /admin?mode=fail          answer 500
 *   POST /admin?mode=hang&ms=N     hold each request N ms (default 60000, or until the mode changes), then 503
 *   POST /admin?mode=drop          close the connection without an answer
 * Binds to 127.0.0.1 only; --port 0 picks a free port. Prints "hooksink listening on 127.0.0.1:PORT". */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "canary/clock.h"
#include "canary/hmac.h"

#define BODY_MAX (256 * 1024)

enum mode { M_OK, M_FAIL, M_HANG, M_DROP };

struct sink {
	pthread_mutex_t mu; /* guards log */
	FILE *log;
	const char *secret;
	_Atomic int mode;
	_Atomic long hang_ms;
	_Atomic unsigned long generation; /* bumped on every mode change: a hang ends early */
	_Atomic unsigned long received;
};

struct req {
	char *body;
	size_t len;
	bool too_big;
};

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *text)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	enum MHD_Result rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result admin(struct sink *s, struct MHD_Connection *conn)
{
	const char *m = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "mode");
	const char *ms = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "ms");
	int mode = !m ? -1 : !strcmp(m, "ok") ? M_OK : !strcmp(m, "fail") ? M_FAIL : !strcmp(m, "hang") ? M_HANG
		 : !strcmp(m, "drop") ? M_DROP : -1;
	if (mode < 0)
		return reply(conn, 400, "mode must be ok, fail, hang or drop\n");
	atomic_store(&s->hang_ms, ms ? strtol(ms, NULL, 10) : 60000);
	atomic_store(&s->mode, mode);
	atomic_fetch_add(&s->generation, 1);
	return reply(conn, 200, "ok\n");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	(void)version;
	struct sink *s = cls;
	struct req *rq = *con_cls;
	if (!rq) {
		if (!(rq = calloc(1, sizeof *rq)))
			return MHD_NO;
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_size) {
		if (rq->len + *upload_size > BODY_MAX) {
			rq->too_big = true;
		} else {
			char *nb = realloc(rq->body, rq->len + *upload_size + 1);
			if (!nb)
				return MHD_NO;
			rq->body = nb;
			memcpy(rq->body + rq->len, upload, *upload_size);
			rq->len += *upload_size;
			rq->body[rq->len] = '\0';
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/admin") == 0)
		return admin(s, conn);
	if (strcmp(method, "POST") != 0)
		return reply(conn, 405, "POST only\n");
	if (rq->too_big)
		return reply(conn, 413, "too big\n");
	const char *body = rq->body ? rq->body : "";
	int mode = atomic_load(&s->mode);
	unsigned status = mode == M_OK ? 200 : mode == M_FAIL ? 500 : mode == M_HANG ? 503 : 0;
	if (mode == M_HANG) {
		unsigned long gen = atomic_load(&s->generation);
		long ms = atomic_load(&s->hang_ms);
		for (long t = 0; t < ms && atomic_load(&s->generation) == gen; t += 10)
			usleep(10 * 1000);
	}
	const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key");
	const char *event = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Canary-Event");
	const char *sig = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Canary-Signature");
	int sig_ok = -1;
	if (s->secret) {
		char hex[CN_SHA256_HEX_LEN], want[80];
		cn_hmac_sha256_hex(s->secret, strlen(s->secret), body, rq->len, hex);
		snprintf(want, sizeof want, "sha256=%s", hex);
		sig_ok = sig && cn_consttime_equal(sig, want);
	}
	atomic_fetch_add(&s->received, 1);
	pthread_mutex_lock(&s->mu);
	fprintf(s->log, "{\"t_ms\":%lld,\"status\":%u,\"path\":", (long long)cn_wall_ms(), status);
	json_str(s->log, url);
	fputs(",\"key\":", s->log);
	json_str(s->log, key);
	fputs(",\"event\":", s->log);
	json_str(s->log, event);
	fputs(",\"sig\":", s->log);
	json_str(s->log, sig);
	fprintf(s->log, ",\"sig_ok\":%s,\"body\":", sig_ok < 0 ? "null" : sig_ok ? "true" : "false");
	json_str(s->log, body);
	fputs("}\n", s->log);
	fflush(s->log);
	pthread_mutex_unlock(&s->mu);
	if (status == 0)
		return MHD_NO; /* drop: close without an answer */
	return reply(conn, status, status == 200 ? "ok\n" : "not now\n");
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	struct req *rq = *con_cls;
	if (rq) {
		free(rq->body);
		free(rq);
	}
	*con_cls = NULL;
}

int main(int argc, char **argv)
{
	static struct sink s = { .mu = PTHREAD_MUTEX_INITIALIZER };
	long port = 0;
	const char *logpath = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--log") && i + 1 < argc)
			logpath = argv[++i];
		else if (!strcmp(argv[i], "--secret") && i + 1 < argc)
			s.secret = argv[++i];
		else if (!strcmp(argv[i], "--mode") && i + 1 < argc) {
			const char *m = argv[++i];
			s.mode = !strcmp(m, "fail") ? M_FAIL : !strcmp(m, "hang") ? M_HANG : !strcmp(m, "drop") ? M_DROP : M_OK;
		} else {
			fprintf(stderr, "usage: hooksink [--port P] --log FILE [--secret S] [--mode ok|fail|hang|drop]\n");
			return 64;
		}
	}
	if (!logpath || port < 0 || port > 65535) {
		fprintf(stderr, "hooksink: --log FILE is required; --port is 0..65535\n");
		return 64;
	}
	s.hang_ms = 60000;
	if (!(s.log = fopen(logpath, "a"))) {
		perror(logpath);
		return 70;
	}
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
						(uint16_t)port, NULL, NULL, handle, &s, MHD_OPTION_SOCK_ADDR,
						(struct sockaddr *)&sa, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
						MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "hooksink: cannot listen on 127.0.0.1:%ld (port in use?)\n", port);
		return 69;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	printf("hooksink listening on 127.0.0.1:%u\n", info ? info->port : (unsigned)port);
	fflush(stdout);
	int sig = 0;
	while (sigwait(&sigs, &sig) != 0)
		;
	atomic_fetch_add(&s.generation, 1); /* end hangs */
	MHD_stop_daemon(d);
	fclose(s.log);
	return 0;
}
