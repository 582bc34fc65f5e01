/* Inside the gateway module: the adapter interface (a struct of function pointers per gateway kind) and the
 * HAProxy runtime API transport. Not a public header. */
#ifndef CANARY_GATEWAY_INT_H
#define CANARY_GATEWAY_INT_H

#include <stddef.h>
#include <sys/un.h>

#include "canary/err.h"
#include "canary/service-t.h"

struct cn_gateway;

struct cn_gateway_ops {
	const char *name;
	int (*set_weights)(struct cn_gateway *gw, const double pct[2], struct cn_err *err);
	int (*get_weights)(struct cn_gateway *gw, double pct[2], struct cn_err *err);
	void (*close)(struct cn_gateway *gw);
};

/* Every adapter's client starts with this header; cn_gateway_* dispatch through ops. */
struct cn_gateway {
	const struct cn_gateway_ops *ops;
};

/* Opens an HAProxy client for svc; returns a new client or NULL with err set. */
struct cn_gateway *cn_gateway_haproxy_open(const struct cn_service *svc, struct cn_err *err);

/* Where the HAProxy runtime API listens. */
struct cn_hap_addr {
	int is_unix;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char host[256];
	char port[16];
	char text[CN_URL_MAX]; /* as configured, for messages */
};

/* Parses "unix:/path", "/path", "host:port" or "[v6]:port" into a; returns 0 or -CN_EINPUT. */
int cn_hap_addr_parse(const char *s, struct cn_hap_addr *a, struct cn_err *err);

/* Largest runtime API answer read; longer answers are an error. */
#define CN_HAP_ANSWER_MAX 16384

/* Sends one command (without newline) on a new connection and reads the answer to EOF into out (NUL-terminated,
 * at most outsz - 1 bytes), all within timeout_ms. Returns 0, -CN_EUNAVAIL (cannot connect, timeout, reset) or
 * -CN_EINTERNAL (answer longer than outsz - 1). */
int cn_hap_cmd(const struct cn_hap_addr *a, const char *cmd, int64_t timeout_ms, char *out, size_t outsz,
	       struct cn_err *err);

/* Copies text into buf as one printable line (control characters become spaces, trailing blanks dropped,
 * truncated with "..." when longer than bufsz - 1); returns buf. For quoting HAProxy's answers in errors. */
char *cn_hap_quote(const char *text, char *buf, size_t bufsz);

#endif
