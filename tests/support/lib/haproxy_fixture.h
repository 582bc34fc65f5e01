/* A real HAProxy for tests: started on 127.0.0.1 with a free frontend port, an admin socket (unix and TCP) in a
 * temp dir and one `balance roundrobin` backend of two servers; stopped and cleaned up by hap_stop. */
#ifndef CANARY_HAPROXY_FIXTURE_H
#define CANARY_HAPROXY_FIXTURE_H

#include <stddef.h>
#include <sys/types.h>

#define HAP_NAME_MAX 64
#define HAP_PATH_MAX 108

struct hap {
	pid_t pid;                      /* haproxy's pid while it runs, else 0 */
	char dir[HAP_PATH_MAX];         /* temp dir holding the config, the socket and haproxy.log */
	char cfg_path[HAP_PATH_MAX + 16];
	char log_path[HAP_PATH_MAX + 16];
	char sock_path[HAP_PATH_MAX];   /* admin unix socket */
	int port;                       /* frontend port on 127.0.0.1 */
	int admin_port;                 /* admin runtime API over TCP on 127.0.0.1 */
	char runtime_api[HAP_PATH_MAX + 8]; /* "unix:<sock_path>", for svc->gateway.runtime_api */
	char runtime_api_tcp[32];       /* "127.0.0.1:<admin_port>" */
	char backend[HAP_NAME_MAX];
	char srv[2][HAP_NAME_MAX];
	char err[512];                  /* why the last call failed, one line */
};

struct hap_opts {
	const char *backend;            /* backend name, e.g. "chat" */
	const char *srv[2];             /* server names, e.g. "blue", "green" */
	const char *addr[2];            /* server addresses, "127.0.0.1:PORT" */
	int weight[2];                  /* initial weights 0..256 */
	const char *haproxy;            /* binary; NULL: $HAPROXY_BIN, else /usr/sbin/haproxy */
};

/* Starts haproxy with o and waits (up to 5 s) until its admin socket answers. Returns 0, or -1 with h->err set
 * (the tail of haproxy's log when it exited). h is filled; call hap_stop(h) in any case. */
int hap_start_opts(struct hap *h, const struct hap_opts *o);

/* hap_start_opts with srv_a at weight 1 and srv_b at weight 0 (slot a live, as the gateway maps 100 % / 0 %). */
int hap_start(struct hap *h, const char *backend, const char *srv_a, const char *addr_a, const char *srv_b,
	      const char *addr_b);

/* Runs one runtime API command on the unix socket and reads the answer into out (NUL-terminated, truncated to
 * outsz - 1). Returns 0 or -1 with h->err set. */
int hap_cmd(struct hap *h, const char *cmd, char *out, size_t outsz);

/* Reads server srv's current weight with `get weight`; returns it, or -1 with h->err set. */
int hap_get_weight(struct hap *h, const char *srv);

/* Stops haproxy (SIGTERM, then SIGKILL after 3 s), reaps it and removes the temp dir. Safe to call twice. */
void hap_stop(struct hap *h);

/* Returns a TCP port on 127.0.0.1 that nothing listens on, reserved for this process (port_fixture.h) until it
 * exits, so no concurrent test starts a server on it; or -1. The fixture's own ports (h->port, h->admin_port) are
 * reserved the same way and stay reserved after hap_stop, so a stopped haproxy's ports keep refusing. */
int hap_free_port(void);

#endif
