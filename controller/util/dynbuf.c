/* The capped growable buffer (canary/dynbuf.h): doubles from a small first allocation, never allocates more than
 * its max plus the NUL. */
#include "canary/dynbuf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/bug.h"
#include "canary/err.h"

#define DYNBUF_FIRST_ALLOC 256

void cn_dynbuf_init(struct cn_dynbuf *b, size_t max)
{
	CN_BUG_ON(!b || max == 0);
	*b = (struct cn_dynbuf){.max = max};
}

/* Makes room for extra more bytes and the NUL. Returns 0 or a -code (also recorded in b->err). */
static int reserve(struct cn_dynbuf *b, size_t extra)
{
	if (b->err)
		return b->err;
	if (extra > b->max - b->len)
		return b->err = -CN_EINPUT;
	size_t need = b->len + extra + 1;
	if (need <= b->alloc)
		return 0;
	size_t alloc = b->alloc ? b->alloc : DYNBUF_FIRST_ALLOC;
	while (alloc < need)
		alloc = alloc > SIZE_MAX / 2 ? SIZE_MAX : alloc * 2;
	if (alloc > b->max + 1)
		alloc = b->max + 1;
	char *p = realloc(b->p, alloc);
	if (!p)
		return b->err = -CN_EINTERNAL;
	b->p = p;
	b->p[b->len] = '\0';
	b->alloc = alloc;
	return 0;
}

int cn_dynbuf_add(struct cn_dynbuf *b, const void *mem, size_t len)
{
	if (b->err || len == 0) /* zero bytes: nothing to allocate */
		return b->err;
	int rc = reserve(b, len);
	if (rc < 0)
		return rc;
	memcpy(b->p + b->len, mem, len);
	b->len += len;
	b->p[b->len] = '\0';
	return 0;
}

int cn_dynbuf_adds(struct cn_dynbuf *b, const char *s)
{
	return cn_dynbuf_add(b, s, strlen(s));
}

int cn_dynbuf_vaddf(struct cn_dynbuf *b, const char *fmt, va_list ap)
{
	char tmp[1024];
	va_list again;
	if (b->err)
		return b->err;
	va_copy(again, ap);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	if (n < 0) {
		va_end(again);
		return b->err = -CN_EINTERNAL;
	}
	if ((size_t)n < sizeof tmp) {
		va_end(again);
		return cn_dynbuf_add(b, tmp, (size_t)n);
	}
	int rc = reserve(b, (size_t)n);
	if (rc == 0) {
		vsnprintf(b->p + b->len, (size_t)n + 1, fmt, again);
		b->len += (size_t)n;
	}
	va_end(again);
	return rc;
}

int cn_dynbuf_addf(struct cn_dynbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = cn_dynbuf_vaddf(b, fmt, ap);
	va_end(ap);
	return rc;
}

int cn_dynbuf_add_json_string(struct cn_dynbuf *b, const char *s, size_t n)
{
	size_t run = 0;
	cn_dynbuf_add(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		cn_dynbuf_add(b, s + run, i - run);
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			cn_dynbuf_add(b, e, 2);
		} else {
			cn_dynbuf_addf(b, "\\u%04x", c);
		}
		run = i + 1;
	}
	cn_dynbuf_add(b, s + run, n - run);
	return cn_dynbuf_add(b, "\"", 1);
}

const char *cn_dynbuf_ptr(const struct cn_dynbuf *b)
{
	return b->p ? b->p : "";
}

size_t cn_dynbuf_len(const struct cn_dynbuf *b)
{
	return b->len;
}

int cn_dynbuf_error(const struct cn_dynbuf *b)
{
	return b->err;
}

char *cn_dynbuf_take(struct cn_dynbuf *b, size_t *len)
{
	char *s = b->p ? b->p : calloc(1, 1);
	if (!s)
		return NULL;
	if (len)
		*len = b->len;
	*b = (struct cn_dynbuf){.max = b->max};
	return s;
}

void cn_dynbuf_reset(struct cn_dynbuf *b)
{
	b->len = 0;
	b->err = 0;
	if (b->p)
		b->p[0] = '\0';
}

void cn_dynbuf_free(struct cn_dynbuf *b)
{
	free(b->p);
	*b = (struct cn_dynbuf){.max = b->max};
}
