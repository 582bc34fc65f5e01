/* A real nginx for tests (see nginx_fixture.h). */
#include "nginx_fixture.h"
#include "port_fixture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int write_file(struct ngx *n, const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		snprintf(n->err, sizeof n->err, "cannot write '%s': %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int port_open(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static void log_tail(const struct ngx *n, char *buf, size_t size)
{
	buf[0] = '\0';
	FILE *f = fopen(n->error_log, "r");
	if (!f)
		return;
	char line[400];
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0])
			snprintf(buf, size, "%s", line);
	}
	fclose(f);
}

static int launch(struct ngx *n)
{
	unlink(n->pid_file);
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(n->err, sizeof n->err, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int fd = open(n->error_log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		setpgid(0, 0);
		execl(n->bin, n->bin, "-p", n->dir, "-c", n->conf, (char *)NULL);
		_exit(127);
	}
	n->pid = pid;
	long deadline = now_ms() + 5000;
	while (now_ms() < deadline) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			char tail[300];
			log_tail(n, tail, sizeof tail);
			n->pid = 0;
			snprintf(n->err, sizeof n->err, "nginx '%s' exited (status %d): %s", n->bin,
				 WIFEXITED(status) ? WEXITSTATUS(status) : -1, tail);
			return -2;
		}
		if (access(n->pid_file, R_OK) == 0 && port_open(n->port))
			return 0;
		sleep_ms(10);
	}
	snprintf(n->err, sizeof n->err, "nginx did not serve 127.0.0.1:%d within 5 s", n->port);
	return -1;
}

int ngx_start(struct ngx *n, const struct ngx_opts *o)
{
	char text[4096];
	memset(n, 0, sizeof *n);
	snprintf(n->dir, sizeof n->dir, "/tmp/canary-ngx-XXXXXX");
	if (!mkdtemp(n->dir)) {
		snprintf(n->err, sizeof n->err, "mkdtemp: %s", strerror(errno));
		n->dir[0] = '\0';
		return -1;
	}
	chmod(n->dir, 0755); /* workers running as nobody read nothing here, but nginx -t by others may */
	snprintf(n->conf, sizeof n->conf, "%s/nginx.conf", n->dir);
	snprintf(n->include, sizeof n->include, "%s/servers.conf", n->dir);
	snprintf(n->pid_file, sizeof n->pid_file, "%s/nginx.pid", n->dir);
	snprintf(n->error_log, sizeof n->error_log, "%s/error.log", n->dir);
	const char *bin = o->nginx ? o->nginx : getenv("NGINX_BIN");
	snprintf(n->bin, sizeof n->bin, "%s", bin && *bin ? bin : "/usr/sbin/nginx");

	char servers[512];
	int len = 0;
	for (int i = 0; i < 2; i++) {
		if (o->weight[i] > 0)
			len += snprintf(servers + len, sizeof servers - (size_t)len, "server %s weight=%d;\n", o->addr[i],
					o->weight[i]);
		else
			len += snprintf(servers + len, sizeof servers - (size_t)len, "server %s down;\n", o->addr[i]);
	}
	if (write_file(n, n->include, servers) < 0)
		return -1;
	int rc = -2;
	for (int attempt = 0; attempt < 3 && rc == -2; attempt++) {
		struct cn_err err = { 0 };
		if (n->port > 0)
			port_release(n->port);
		n->port = port_reserve(&err);
		if (n->port < 0) {
			snprintf(n->err, sizeof n->err, "no free port: %s", err.msg);
			return -1;
		}
		snprintf(text, sizeof text,
			 "%s"
			 "worker_processes 1;\n"
			 "pid %s;\n"
			 "error_log %s notice;\n"
			 "daemon off;\n"
			 "events { worker_connections 1024; }\n"
			 "http {\n"
			 "    access_log off;\n"
			 "    client_body_temp_path %s/body;\n"
			 "    proxy_temp_path %s/proxy;\n"
			 "    fastcgi_temp_path %s/fastcgi;\n"
			 "    uwsgi_temp_path %s/uwsgi;\n"
			 "    scgi_temp_path %s/scgi;\n"
			 "    upstream %s {\n"
			 "        include %s;\n"
			 "        keepalive 32;\n"
			 "    }\n"
			 "    server {\n"
			 "        listen 127.0.0.1:%d;\n"
			 "        location / {\n"
			 "            proxy_pass http://%s;\n"
			 "            proxy_http_version 1.1;\n"
			 "            proxy_set_header Connection \"\";\n"
			 "        }\n"
			 "    }\n"
			 "}\n",
			 geteuid() == 0 ? "user nobody nogroup;\n" : "", n->pid_file, n->error_log, n->dir, n->dir, n->dir,
			 n->dir, n->dir, o->upstream, n->include, n->port, o->upstream);
		if (write_file(n, n->conf, text) < 0)
			return -1;
		rc = launch(n);
	}
	return rc == 0 ? 0 : -1;
}

int ngx_restart(struct ngx *n)
{
	return launch(n) == 0 ? 0 : -1;
}

int ngx_workers(const struct ngx *n, pid_t *kids, int max)
{
	char path[96], buf[4096];
	int k = 0;
	if (n->pid <= 0)
		return 0;
	snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)n->pid, (int)n->pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t len = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[len] = '\0';
	char *save = NULL;
	for (char *t = strtok_r(buf, " \n", &save); t && k < max; t = strtok_r(NULL, " \n", &save))
		kids[k++] = (pid_t)strtol(t, NULL, 10);
	return k;
}

static void reap(struct ngx *n, int sig, long wait_ms)
{
	int status;
	kill(-n->pid, sig); /* the master and its workers: launch made it a group leader */
	long deadline = now_ms() + wait_ms;
	while (waitpid(n->pid, &status, WNOHANG) == 0) {
		if (now_ms() > deadline) {
			kill(-n->pid, SIGKILL);
			waitpid(n->pid, &status, 0);
			break;
		}
		sleep_ms(10);
	}
	kill(-n->pid, SIGKILL); /* workers that outlived their master */
	n->pid = 0;
}

void ngx_kill(struct ngx *n)
{
	if (n->pid > 0)
		reap(n, SIGKILL, 3000);
}

static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char p[NGX_PATH_MAX + 300];
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		if (unlink(p) < 0)
			rm_tree(p); /* a directory (nginx's temp paths) */
	}
	closedir(d);
	rmdir(dir);
}

void ngx_stop(struct ngx *n)
{
	if (n->pid > 0)
		reap(n, SIGQUIT, 3000);
	if (n->dir[0]) {
		rm_tree(n->dir);
		n->dir[0] = '\0';
	}
}
