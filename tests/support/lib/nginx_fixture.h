/* A real nginx for tests: started in the foreground (daemon off) with its own prefix, config, pid file and error
 * log in a temp dir, one http server on a reserved 127.0.0.1 port proxying to an upstream whose server lines come
 * from an include file (what the nginx gateway writes); stopped and cleaned up by ngx_stop. Runs as whoever runs
 * the test (as root, its workers run as nobody). */
#ifndef CANARY_NGINX_FIXTURE_H
#define CANARY_NGINX_FIXTURE_H

#include <sys/types.h>

#define NGX_PATH_MAX 160

struct ngx {
	pid_t pid;                         /* the master while it runs (our child), else 0 */
	char dir[NGX_PATH_MAX];
	char conf[NGX_PATH_MAX + 16];      /* DIR/nginx.conf */
	char include[NGX_PATH_MAX + 16];   /* DIR/servers.conf, inside the upstream block */
	char pid_file[NGX_PATH_MAX + 16];  /* DIR/nginx.pid */
	char error_log[NGX_PATH_MAX + 16]; /* DIR/error.log */
	char bin[NGX_PATH_MAX];            /* the nginx binary */
	int port;                          /* the http server on 127.0.0.1 */
	char err[512];
};

struct ngx_opts {
	const char *upstream;  /* upstream name, e.g. "chat" */
	const char *addr[2];   /* the two servers' addresses */
	int weight[2];         /* initial weights; 0 writes `down` */
	const char *nginx;     /* binary; NULL: $NGINX_BIN, else /usr/sbin/nginx */
};

/* Writes the config and the include, starts nginx and waits (up to 5 s) until it serves its port and has written
 * its pid file. Returns 0, or -1 with n->err set (the error log's tail). Call ngx_stop(n) in any case. */
int ngx_start(struct ngx *n, const struct ngx_opts *o);

/* Starts nginx again with the files as they are (after ngx_kill); same returns as ngx_start. */
int ngx_restart(struct ngx *n);

/* Stops the master (SIGKILL: no cleanup by nginx, the pid file stays) and its workers; keeps the files. */
void ngx_kill(struct ngx *n);

/* The master's children (its workers) into kids (at most max); returns how many. */
int ngx_workers(const struct ngx *n, pid_t *kids, int max);

/* Stops nginx (SIGQUIT, then SIGKILL after 3 s) and removes the temp dir. Safe to call twice. */
void ngx_stop(struct ngx *n);

#endif
