/* The server-sent-events parser for streaming completions: lines split across any chunking, `data:` events
 * counted, `data: [DONE]` noted, every line capped. It looks for text in an event without decoding its JSON: the
 * timing needs to know when a token arrived, not what it says. */
#include <stdlib.h>
#include <string.h>

#include "canary/load.h"

void cn_sse_init(struct cn_sse *p)
{
	memset(p, 0, sizeof *p);
}

void cn_sse_free(struct cn_sse *p)
{
	if (p) {
		free(p->line);
		p->line = NULL;
		p->len = p->alloc = 0;
	}
}

/* The first occurrence of needle (nl bytes) in s (n bytes), or NULL (memmem is a GNU extension). */
static const char *find(const char *s, size_t n, const char *needle, size_t nl)
{
	for (size_t i = 0; nl <= n && i <= n - nl; i++)
		if (s[i] == needle[0] && memcmp(s + i, needle, nl) == 0)
			return s + i;
	return NULL;
}

/* True if the JSON text has `"key":"` followed by at least one character before the closing quote. */
static bool has_text(const char *s, size_t n, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = s; (p = find(p, n - (size_t)(p - s), key, kl)) != NULL; p += kl) {
		const char *q = p + kl, *end = s + n;
		while (q < end && (*q == ' ' || *q == ':'))
			q++;
		if (q + 1 < end && *q == '"' && q[1] != '"')
			return true;
	}
	return false;
}

/* True if the JSON text has key (given with its quotes) followed by a colon: a key, not a value such as
 * "finish_reason":"tool_calls". */
static bool has_key(const char *s, size_t n, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = s; (p = find(p, n - (size_t)(p - s), key, kl)) != NULL; p += kl) {
		const char *q = p + kl, *end = s + n;
		while (q < end && *q == ' ')
			q++;
		if (q < end && *q == ':')
			return true;
	}
	return false;
}

/* One complete line (without its end of line). Returns 1 for a token event, else 0. */
static int line_done(struct cn_sse *p, const char *s, size_t n)
{
	if (n < 5 || memcmp(s, "data:", 5) != 0)
		return 0; /* comments, event:, id:, retry: and blank separators carry no tokens */
	s += 5;
	n -= 5;
	if (n && *s == ' ') {
		s++;
		n--;
	}
	if (n == 6 && memcmp(s, "[DONE]", 6) == 0) {
		p->done = true;
		return 0;
	}
	p->events++;
	if (p->on_data)
		p->on_data(p->on_data_arg, s, n);
	if (n >= 8 && memcmp(s, "{\"error\"", 8) == 0) {
		p->error = true;
		return 0;
	}
	if (has_text(s, n, "\"text\"") || has_text(s, n, "\"content\"") || has_key(s, n, "\"tool_calls\"")) {
		p->tokens++;
		return 1;
	}
	return 0;
}

long cn_sse_feed(struct cn_sse *p, const char *buf, size_t len)
{
	long toks = 0;
	if (p->error)
		return -1;
	while (len > 0) {
		const char *nl = memchr(buf, '\n', len);
		size_t take = nl ? (size_t)(nl - buf) : len;
		if (p->len + take > CN_SSE_LINE_MAX) {
			p->error = true;
			return -1;
		}
		const char *line = buf;
		size_t n = take;
		if (p->len || !nl) { /* a line split across chunks: gather it */
			if (p->len + take + 1 > p->alloc) {
				size_t na = p->alloc ? p->alloc : 256;
				while (na < p->len + take + 1)
					na *= 2;
				char *nb = realloc(p->line, na);
				if (!nb) {
					p->error = true;
					return -1;
				}
				p->line = nb;
				p->alloc = na;
			}
			memcpy(p->line + p->len, buf, take);
			p->len += take;
			line = p->line;
			n = p->len;
		}
		if (!nl)
			break;
		if (n && line[n - 1] == '\r')
			n--;
		toks += line_done(p, line, n);
		p->len = 0;
		buf += take + 1;
		len -= take + 1;
		if (p->error)
			return -1;
	}
	return toks;
}
