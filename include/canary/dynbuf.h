/* One growable buffer with a size cap, after curl's dynbuf (docs/internals/DYNBUF.md): every buffer is created with
 * the most bytes it may ever hold, named where it is made (CN_REPORT_HTML_MAX, CN_PROMTEXT_MAX_PAGE,
 * CN_MIGRATION_MAX_BYTES), so a hostile metrics page, a runaway report or a huge file cannot exhaust memory.
 *
 * The text is always NUL-terminated (the NUL is not counted in len and not in the cap). A failed add changes nothing
 * and is sticky: every later add fails with the same code until cn_dynbuf_reset, so a writer may add many pieces and
 * check once at the end (cn_dynbuf_error). */
#ifndef CANARY_DYNBUF_H
#define CANARY_DYNBUF_H

#include <stdarg.h>
#include <stddef.h>

struct cn_dynbuf {
	char *p;      /* NULL until the first byte is added */
	size_t len;   /* bytes held, without the NUL */
	size_t alloc; /* bytes allocated */
	size_t max;   /* most bytes it may hold, without the NUL */
	int err;      /* 0, or -CN_EINPUT / -CN_EINTERNAL of the first failed add */
};

/* Makes b an empty buffer that may hold at most max bytes (max > 0). Allocates nothing. */
void cn_dynbuf_init(struct cn_dynbuf *b, size_t max);

/* Appends len bytes of mem (len 0: nothing, success). Returns 0; -CN_EINPUT when b would hold more than its max;
 * -CN_EINTERNAL when out of memory; or the earlier failure's code. On failure b is unchanged. */
int cn_dynbuf_add(struct cn_dynbuf *b, const void *mem, size_t len);

/* Appends the NUL-terminated string s. Returns as cn_dynbuf_add. */
int cn_dynbuf_adds(struct cn_dynbuf *b, const char *s);

/* Appends printf-style text. Returns as cn_dynbuf_add (-CN_EINTERNAL also for an encoding error). */
int cn_dynbuf_addf(struct cn_dynbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cn_dynbuf_vaddf(struct cn_dynbuf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Appends n bytes of s as a JSON string literal, quotes included ('"', '\\' and control characters escaped; other
 * bytes as they are). Returns as cn_dynbuf_add. */
int cn_dynbuf_add_json_string(struct cn_dynbuf *b, const char *s, size_t n);

/* The text held: borrowed, valid until the next add, reset or free; "" when empty. */
const char *cn_dynbuf_ptr(const struct cn_dynbuf *b);

/* Bytes held, without the NUL. */
size_t cn_dynbuf_len(const struct cn_dynbuf *b);

/* 0, or the code of the first failed add since init or reset. */
int cn_dynbuf_error(const struct cn_dynbuf *b);

/* Hands the text over: returns a new NUL-terminated string of cn_dynbuf_len bytes (the caller frees it; an empty
 * buffer gives a new ""), writes its length to *len when not NULL, and leaves b empty with its max. NULL when out of
 * memory (b unchanged). */
char *cn_dynbuf_take(struct cn_dynbuf *b, size_t *len);

/* Empties b and clears its error; keeps its memory and max for reuse. */
void cn_dynbuf_reset(struct cn_dynbuf *b);

/* Frees b's memory and empties it (its max stays). Accepts a buffer never added to. */
void cn_dynbuf_free(struct cn_dynbuf *b);

#endif
