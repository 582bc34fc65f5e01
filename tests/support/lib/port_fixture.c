/* The loopback port registry of scripts/libcanary.bash, in C: a directory (CANARY_PORTS_DIR, default
 * /tmp/canary-ports, mode 1777) with one file per reserved port holding "PID START" (the owner and its start time
 * from /proc/PID/stat, so a reused pid is not taken for the owner). Every change holds an flock on DIR/.lock; a dead
 * owner's file is taken over by the next reserver. */
#include "port_fixture.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PORT_LOW 10000
#define TRIES 200

static const char *registry_dir(void)
{
	const char *d = getenv("CANARY_PORTS_DIR");
	return d && *d ? d : "/tmp/canary-ports";
}

/* The start time of process pid (field 22 of /proc/PID/stat) into buf; returns 0, or -1 if there is none (or only
 * its zombie). */
static int proc_start(long pid, char *buf, size_t size)
{
	char path[64], stat[1024];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(stat, 1, sizeof stat - 1, f);
	fclose(f);
	stat[n] = '\0';
	char *p = strrchr(stat, ')');
	if (!p)
		return -1;
	p++;
	while (*p == ' ')
		p++;
	if (*p == 'Z' || *p == 'X')
		return -1; /* a zombie has closed its sockets already */
	/* after "pid (comm)" come fields 3 (the state), 4, ...: skip to field 22 */
	for (int field = 2; field < 22; field++) {
		while (*p == ' ')
			p++;
		if (field < 21)
			p += strcspn(p, " ");
	}
	size_t len = strcspn(p, " \n");
	if (len == 0 || len >= size)
		return -1;
	memcpy(buf, p, len);
	buf[len] = '\0';
	return 0;
}

/* The lowest port of the kernel's ephemeral range. */
static int ephemeral_low(void)
{
	int low = 32768;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	if (f) {
		if (fscanf(f, "%d", &low) != 1)
			low = 32768;
		fclose(f);
	}
	return low > PORT_LOW + 2000 ? low : 32768;
}

/* Opens and locks the registry; returns the lock's fd, or -1 with err set. */
static int registry_lock(struct cn_err *err)
{
	const char *dir = registry_dir();
	char path[512];
	if (mkdir(dir, 01777) == 0)
		chmod(dir, 01777); /* mkdir honours the umask; every user shares the registry */
	snprintf(path, sizeof path, "%s/.lock", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
		if (fd >= 0)
			fchmod(fd, 0666);
	}
	if (fd < 0) {
		cn_fail(err, CN_EUNAVAIL, "cannot open the port registry '%s': %s (remove '%s' if it is stale)", path,
			strerror(errno), dir);
		return -1;
	}
	for (int i = 0; i < 3000; i++) { /* 30 s */
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR)
			break;
		usleep(10000);
	}
	cn_fail(err, CN_EUNAVAIL, "cannot lock the port registry '%s': %s", path, strerror(errno ? errno : EAGAIN));
	close(fd);
	return -1;
}

/* True if something is bound to 127.0.0.1:port (we cannot bind it, as a server with SO_REUSEADDR would). */
static int port_busy(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int busy = bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0;
	close(fd);
	return busy;
}

/* Under the lock: reserves port for pid (start time start) unless a live process holds it or it is in use. */
static int take(int port, long pid, const char *start)
{
	char path[512], owner_start[64];
	snprintf(path, sizeof path, "%s/%d", registry_dir(), port);
	FILE *f = fopen(path, "r");
	if (f) {
		long opid = 0;
		char ostart[64] = "";
		int n = fscanf(f, "%ld %63s", &opid, ostart);
		fclose(f);
		if (n == 2 && proc_start(opid, owner_start, sizeof owner_start) == 0 && strcmp(owner_start, ostart) == 0)
			return -1; /* a live owner, maybe this process */
		if (unlink(path) < 0 && errno != ENOENT)
			return -1; /* another user's stale file in the sticky directory: leave the port alone */
	}
	if (port_busy(port))
		return -1;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	char line[96];
	int len = snprintf(line, sizeof line, "%ld %s\n", pid, start);
	int ok = write(fd, line, (size_t)len) == len;
	close(fd);
	if (!ok)
		unlink(path);
	return ok ? 0 : -1;
}

/* At exit: drops every reservation of this process (one that dies by a signal leaves them to be taken over). */
static void release_all(void)
{
	const char *dir = registry_dir();
	long self = (long)getpid();
	int fd = registry_lock(NULL);
	if (fd < 0)
		return;
	DIR *d = opendir(dir);
	for (struct dirent *e; d && (e = readdir(d));) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		char path[512];
		long opid = 0;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%ld", &opid) == 1 && opid == self)
			unlink(path);
		fclose(f);
	}
	if (d)
		closedir(d);
	close(fd);
}

int port_reserve(struct cn_err *err)
{
	static uint64_t rng;
	static long atexit_pid;
	long pid = (long)getpid();
	char start[64];
	if (proc_start(pid, start, sizeof start) < 0) {
		cn_fail(err, CN_EUNAVAIL, "cannot read '/proc/%ld/stat' (the port registry needs /proc)", pid);
		return -1;
	}
	if (!rng) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)pid << 40) ^ 0x9e3779b97f4a7c15ull;
	}
	int low = ephemeral_low();
	for (int i = 0; i < TRIES; i++) {
		rng ^= rng << 13; /* xorshift64 */
		rng ^= rng >> 7;
		rng ^= rng << 17;
		int port = PORT_LOW + (int)(rng % (uint64_t)(low - PORT_LOW));
		int fd = registry_lock(err);
		if (fd < 0)
			return -1;
		int rc = take(port, pid, start);
		close(fd);
		if (rc == 0) {
			if (atexit_pid != pid && atexit(release_all) == 0)
				atexit_pid = pid;
			return port;
		}
	}
	cn_fail(err, CN_EUNAVAIL, "no free loopback port below %d after %d tries (registry '%s')", low, TRIES,
		registry_dir());
	return -1;
}

void port_release(int port)
{
	char path[512];
	long opid = 0;
	snprintf(path, sizeof path, "%s/%d", registry_dir(), port);
	int fd = registry_lock(NULL);
	if (fd < 0)
		return;
	FILE *f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%ld", &opid) == 1 && opid == (long)getpid())
			unlink(path);
		fclose(f);
	}
	close(fd);
}
