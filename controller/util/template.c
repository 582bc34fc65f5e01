/* Argument templates (canary/template.h): one pass over the text, placeholders looked up in a small table. */
#include "canary/template.h"

#include <stdio.h>
#include <string.h>

#define NAME_SHOWN 40 /* a placeholder name quoted in a message is cut here */

static int put(char *out, size_t outsz, size_t *n, const char *s, size_t len)
{
	if (*n + len >= outsz)
		return -1;
	memcpy(out + *n, s, len);
	*n += len;
	return 0;
}

/* "a, b, c" of the known names, for messages. */
static void known_list(const struct cn_tmpl_var *vars, size_t nvars, char *buf, size_t size)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < nvars; i++) {
		int w = snprintf(buf + used, size - used, "%s{%s}", i ? ", " : "", vars[i].name);
		if (w < 0 || (size_t)w >= size - used)
			break;
		used += (size_t)w;
	}
}

int cn_tmpl_expand(const char *tmpl, const struct cn_tmpl_var *vars, size_t nvars, char *out, size_t outsz,
		   size_t *at, struct cn_err *err)
{
	size_t n = 0;
	char known[320];

	if (outsz == 0)
		return cn_fail(err, CN_EINPUT, "no room to expand a template");
	for (size_t i = 0; tmpl[i];) {
		char c = tmpl[i];
		if ((c == '{' && tmpl[i + 1] == '{') || (c == '}' && tmpl[i + 1] == '}')) {
			if (put(out, outsz, &n, &c, 1) < 0)
				goto too_long;
			i += 2;
			continue;
		}
		if (c == '}') {
			if (at)
				*at = i;
			return cn_fail(err, CN_EINPUT, "lone '}' at character %zu of '%s'; write '}}' for a literal brace",
				       i + 1, tmpl);
		}
		if (c != '{') {
			if (put(out, outsz, &n, &c, 1) < 0)
				goto too_long;
			i++;
			continue;
		}
		size_t start = i + 1, len = strcspn(tmpl + start, "{}");
		if (tmpl[start + len] != '}') {
			if (at)
				*at = i;
			return cn_fail(err, CN_EINPUT, "unclosed '{' at character %zu of '%s'; close the placeholder with "
				       "'}', or write '{{' for a literal brace", i + 1, tmpl);
		}
		const struct cn_tmpl_var *v = NULL;
		for (size_t k = 0; k < nvars && !v; k++)
			if (strlen(vars[k].name) == len && memcmp(vars[k].name, tmpl + start, len) == 0)
				v = &vars[k];
		if (!v) {
			if (at)
				*at = i;
			known_list(vars, nvars, known, sizeof known);
			return cn_fail(err, CN_EINPUT, "unknown placeholder '{%.*s}' in '%s' (known: %s; '{{' and '}}' "
				       "are literal braces)", (int)(len < NAME_SHOWN ? len : NAME_SHOWN), tmpl + start,
				       tmpl, known);
		}
		if (put(out, outsz, &n, v->value, strlen(v->value)) < 0)
			goto too_long;
		i = start + len + 1;
	}
	out[n] = '\0';
	return 0;
too_long:
	if (at)
		*at = 0;
	return cn_fail(err, CN_EINPUT, "template '%.60s' expands to more than %zu bytes", tmpl, outsz - 1);
}
