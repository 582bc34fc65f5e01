/* A bump arena for jansson's allocations on one thread, for a stretch of code that builds JSON values, dumps them
 * and releases them all: canaryd encodes every judged tick's record this way. A record is some 700 small values (a
 * batch of 64, 45,000); from glibc's heap each was a malloc and a free, and the 31 kB allocations between batches
 * made glibc consolidate the freed ones (together a third of the loop's CPU at N=10,000, bench/scale.sh with perf).
 *
 * cn_json_arena_install makes jansson allocate through the arena's functions: process-wide, once, before any
 * thread uses jansson. Outside a begin/end stretch (or on other threads, or without install) they are malloc and
 * free. Between cn_json_arena_begin and cn_json_arena_end, this thread's jansson allocations come from the arena;
 * every value made in between must be released before end (end takes the memory back at once), and a string
 * jansson returns (json_dumps) must be copied with cn_json_arena_strdup before end. */
#ifndef CANARY_JSON_ARENA_H
#define CANARY_JSON_ARENA_H
#include <stddef.h>

void cn_json_arena_install(void);
void cn_json_arena_begin(void);
void cn_json_arena_end(void);
/* A malloc'd copy of s that outlives the arena (NULL: out of memory), and s given back to jansson's allocator. */
char *cn_json_arena_strdup(char *s);
/* Bytes this thread's arena holds for reuse (tests), and gives them all back (a thread or process that ends). */
size_t cn_json_arena_held(void);
void cn_json_arena_release(void);
#endif
