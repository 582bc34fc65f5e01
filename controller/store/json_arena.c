/* jansson's allocations from a per-thread bump arena (include/canary/json_arena.h). An arena is a list of blocks;
 * a pointer inside one of this thread's blocks is the arena's and its free is nothing; any other pointer is the
 * heap's. end rewinds the blocks and keeps up to ARENA_KEEP bytes of them for the next stretch. */
#include "canary/json_arena.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "canary/bug.h"

#define ARENA_BLOCK ((size_t)256 << 10) /* a tick's record takes about 50 kB (a stretch per record) */
#define ARENA_KEEP ((size_t)1 << 20)    /* kept between stretches; a whole batch's 4 to 9 MB were kept before */
#define ARENA_ALIGN 16

struct block {
	struct block *next;
	size_t size, used; /* of data */
	_Alignas(ARENA_ALIGN) unsigned char data[];
};

static _Thread_local struct block *blocks; /* this thread's, the one in use first */
static _Thread_local bool active;
static bool installed;

static void *arena_malloc(size_t size)
{
	if (!active)
		return malloc(size);
	size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (need < size)
		return NULL;
	/* the first block with room (they are few: a record fills part of one) */
	for (struct block *b = blocks; b; b = b->next)
		if (b->size - b->used >= need) {
			void *p = b->data + b->used;
			b->used += need;
			return p;
		}
	size_t bs = need > ARENA_BLOCK ? need : ARENA_BLOCK;
	struct block *b = malloc(sizeof *b + bs);
	if (!b)
		return NULL;
	b->size = bs;
	b->used = need;
	b->next = blocks;
	blocks = b;
	return b->data;
}

static bool in_arena(const void *p)
{
	const unsigned char *c = p;
	for (const struct block *b = blocks; b; b = b->next)
		if (c >= b->data && c < b->data + b->size)
			return true;
	return false;
}

static void arena_free(void *p)
{
	if (p && !in_arena(p))
		free(p);
}

void cn_json_arena_install(void)
{
	json_set_alloc_funcs(arena_malloc, arena_free);
	installed = true;
}

void cn_json_arena_begin(void)
{
	CN_BUG_ON(active); /* stretches do not nest */
	active = installed;
}

void cn_json_arena_end(void)
{
	active = false;
	size_t kept = 0;
	struct block **bp = &blocks;
	while (*bp) {
		struct block *b = *bp;
		if (kept + b->size > ARENA_KEEP) {
			*bp = b->next;
			free(b);
			continue;
		}
		kept += b->size;
		b->used = 0;
		bp = &b->next;
	}
}

char *cn_json_arena_strdup(char *s)
{
	if (!s)
		return NULL;
	char *copy = strdup(s);
	json_malloc_t m;
	json_free_t f;
	json_get_alloc_funcs(&m, &f);
	f(s);
	return copy;
}

size_t cn_json_arena_held(void)
{
	size_t n = 0;
	for (const struct block *b = blocks; b; b = b->next)
		n += b->size;
	return n;
}

void cn_json_arena_release(void)
{
	CN_BUG_ON(active);
	while (blocks) {
		struct block *b = blocks;
		blocks = b->next;
		free(b);
	}
}
