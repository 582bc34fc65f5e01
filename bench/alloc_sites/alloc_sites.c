/* Live heap by call site, for finding what a long-running canaryd holds (heaptrack's trace of a 10,000-rollout
 * bench is large and slow to read back). An LD_PRELOAD library: every malloc, calloc and realloc is noted with the
 * address it was called from, every free forgets it; when the file $ALLOC_SITES_TRIGGER (default
 * /tmp/alloc_sites.trigger) appears, a thread of its own writes the 60 sites holding the most bytes to
 * $ALLOC_SITES_OUT (default /tmp/alloc_sites.out) as "bytes blocks object offset off_main" (off_main: the bytes
 * above the main heap, in threads' arenas or mmapped) and removes the trigger. Resolve a
 * site of canaryd with `addr2line -f -i -e build-rwd/canaryd OFFSET` (a RelWithDebInfo build). Only the caller's own
 * frame is kept: an allocation made inside libc (strdup) or a library names that library.
 *   SCALE_CANARYD_PREFIX="env LD_PRELOAD=$PWD/build-rwd/bench/liballoc_sites.so" CANARY_BINARY_DIR=build-rwd \
 *     bench/scale.sh 3000 60 2 &   ...   touch /tmp/alloc_sites.trigger
 * The table holds 8 M live blocks (192 MB of address space, touched as it fills); a tool, never in production. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t a, size_t b);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

#define SLOTS (1u << 23)
#define FREED ((uintptr_t)1) /* a slot whose block was freed: probing goes on past it */
#define TOP 60

struct slot {
	uintptr_t p;
	uintptr_t site;
	uint64_t size;
};

static struct slot *tab;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static __thread int quiet; /* the dumping thread's own allocations are not noted */

static uint32_t slot_of(uintptr_t p)
{
	return (uint32_t)((p >> 4) * 0x9E3779B1u) & (SLOTS - 1);
}

static void note(void *p, size_t n, void *site)
{
	if (!p || quiet || !tab)
		return;
	pthread_mutex_lock(&mu);
	uint32_t i = slot_of((uintptr_t)p);
	for (uint32_t k = 0; k < SLOTS && tab[i].p > FREED; k++)
		i = (i + 1) & (SLOTS - 1);
	if (tab[i].p <= FREED)
		tab[i] = (struct slot){ (uintptr_t)p, (uintptr_t)site, n };
	pthread_mutex_unlock(&mu);
}

static void forget(void *p)
{
	if (!p || quiet || !tab)
		return;
	pthread_mutex_lock(&mu);
	uint32_t i = slot_of((uintptr_t)p);
	for (uint32_t k = 0; k < SLOTS && tab[i].p != 0; k++, i = (i + 1) & (SLOTS - 1))
		if (tab[i].p == (uintptr_t)p) {
			tab[i].p = FREED;
			break;
		}
	pthread_mutex_unlock(&mu);
}

void *malloc(size_t n)
{
	void *p = __libc_malloc(n);
	note(p, n, __builtin_return_address(0));
	return p;
}

void *calloc(size_t a, size_t b)
{
	void *p = __libc_calloc(a, b);
	note(p, a * b, __builtin_return_address(0));
	return p;
}

void *realloc(void *o, size_t n)
{
	forget(o);
	void *p = __libc_realloc(o, n);
	note(p ? p : o, p ? n : 0, __builtin_return_address(0));
	return p;
}

void free(void *p)
{
	forget(p);
	__libc_free(p);
}

struct site {
	uintptr_t site;
	uint64_t bytes, blocks, off_main; /* off_main: bytes above the main heap (threads' arenas, mmapped blocks) */
};

static int by_bytes(const void *a, const void *b)
{
	const struct site *x = a, *y = b;
	return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

static void dump(const char *out)
{
	enum { MAX_SITES = 65536 };
	struct site *s = mmap(NULL, MAX_SITES * sizeof *s, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t n = 0;
	uint64_t total = 0;
	if (s == MAP_FAILED)
		return;
	uintptr_t brk_top = (uintptr_t)sbrk(0);
	pthread_mutex_lock(&mu);
	for (uint32_t i = 0; i < SLOTS; i++) {
		if (tab[i].p <= FREED)
			continue;
		size_t j = 0;
		while (j < n && s[j].site != tab[i].site)
			j++;
		if (j == n) {
			if (n == MAX_SITES)
				continue;
			s[n++] = (struct site){ tab[i].site, 0, 0, 0 };
		}
		s[j].bytes += tab[i].size;
		if (tab[i].p >= brk_top)
			s[j].off_main += tab[i].size;
		s[j].blocks++;
		total += tab[i].size;
	}
	pthread_mutex_unlock(&mu);
	qsort(s, n, sizeof *s, by_bytes);
	FILE *f = fopen(out, "w");
	if (f) {
		fprintf(f, "total %llu bytes in %zu sites\n", (unsigned long long)total, n);
		for (size_t j = 0; j < n && j < TOP; j++) {
			Dl_info d;
			const char *obj = "?";
			uintptr_t off = s[j].site;
			if (dladdr((void *)s[j].site, &d) && d.dli_fname) {
				obj = d.dli_fname;
				off -= (uintptr_t)d.dli_fbase;
			}
			fprintf(f, "%llu %llu %s 0x%lx %llu\n", (unsigned long long)s[j].bytes,
				(unsigned long long)s[j].blocks, obj, (unsigned long)off, (unsigned long long)s[j].off_main);
		}
		fclose(f);
	}
	munmap(s, MAX_SITES * sizeof *s);
}

static void *watch_trigger(void *arg)
{
	(void)arg;
	quiet = 1;
	const char *trigger = getenv("ALLOC_SITES_TRIGGER"), *out = getenv("ALLOC_SITES_OUT");
	trigger = trigger ? trigger : "/tmp/alloc_sites.trigger";
	out = out ? out : "/tmp/alloc_sites.out";
	for (;;) {
		sleep(1);
		if (access(trigger, F_OK) == 0) {
			unlink(trigger);
			dump(out);
		}
	}
	return NULL;
}

__attribute__((constructor)) static void start(void)
{
	void *t = mmap(NULL, SLOTS * sizeof *tab, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t == MAP_FAILED)
		return;
	tab = t;
	pthread_t th;
	pthread_create(&th, NULL, watch_trigger, NULL);
	pthread_detach(th);
}
