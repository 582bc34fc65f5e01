/* Value parsers for policy and service files: strict, locale-free where it matters, with messages a person reads. */
#include "canary/parse.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUM_MAX 64 /* longest number text we accept; far more digits than a double holds */

/* [+-]? digits* ( '.' digits* )? with at least one digit; no exponent, no inf/nan, no hex, no spaces. */
static bool is_decimal(const char *s, size_t n)
{
	size_t i = 0, digits = 0;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++, digits++;
	if (i < n && s[i] == '.') {
		i++;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++, digits++;
	}
	return digits > 0 && i == n;
}

/* Converts the first n bytes of s, already checked by is_decimal, to a finite double. */
static int to_double(const char *s, size_t n, double *out)
{
	char buf[NUM_MAX + 1];
	if (n > NUM_MAX)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	char *end = NULL;
	errno = 0;
	double v = strtod(buf, &end);
	if (end != buf + n || errno == ERANGE || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

int cn_parse_number(const char *s, double *out, struct cn_err *err)
{
	double v;
	if (!s || !*s)
		return cn_fail(err, CN_EINPUT, "expected a number, got an empty value");
	if (!is_decimal(s, strlen(s)))
		return cn_fail(err, CN_EINPUT, "expected a number, got '%s'", s);
	if (to_double(s, strlen(s), &v) < 0)
		return cn_fail(err, CN_EINPUT, "number '%s' is out of range", s);
	*out = v;
	return 0;
}

int cn_parse_int64(const char *s, int64_t *out, struct cn_err *err)
{
	if (!s || !*s)
		return cn_fail(err, CN_EINPUT, "expected a whole number, got an empty value");
	size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
	if (!s[i])
		return cn_fail(err, CN_EINPUT, "expected a whole number, got '%s'", s);
	for (; s[i]; i++)
		if (s[i] < '0' || s[i] > '9')
			return cn_fail(err, CN_EINPUT, "expected a whole number, got '%s'", s);
	char *end = NULL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno == ERANGE || *end != '\0')
		return cn_fail(err, CN_EINPUT, "whole number '%s' is out of range", s);
	*out = (int64_t)v;
	return 0;
}

int cn_parse_bool(const char *s, bool *out, struct cn_err *err)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	if (!s)
		s = "";
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return cn_fail(err, CN_EINPUT, "expected true or false, got '%s'", s);
}

int cn_parse_percent(const char *s, double *out_percent, struct cn_err *err)
{
	double v;
	if (!s || !*s)
		return cn_fail(err, CN_EINPUT, "expected a percentage such as '5%%', got an empty value");
	size_t n = strlen(s);
	if (s[n - 1] != '%') {
		if (is_decimal(s, n))
			return cn_fail(err, CN_EINPUT, "percentage '%s' lacks the '%%' sign; write e.g. '%s%%'", s, s);
		return cn_fail(err, CN_EINPUT, "expected a percentage such as '5%%', got '%s'", s);
	}
	if (!is_decimal(s, n - 1) || to_double(s, n - 1, &v) < 0)
		return cn_fail(err, CN_EINPUT, "expected a percentage such as '5%%', got '%s'", s);
	if (v < 0 || s[0] == '-')
		return cn_fail(err, CN_EINPUT, "percentage '%s' must not be negative", s);
	if (v > 100)
		return cn_fail(err, CN_EINPUT, "percentage '%s' is over 100%%", s);
	*out_percent = v;
	return 0;
}

int cn_parse_ratio(const char *s, double *out, struct cn_err *err)
{
	double v;
	if (!s || !*s)
		return cn_fail(err, CN_EINPUT, "expected a ratio such as '1.2x', got an empty value");
	size_t n = strlen(s);
	if (s[n - 1] != 'x') {
		if (is_decimal(s, n))
			return cn_fail(err, CN_EINPUT, "ratio '%s' lacks the 'x' suffix; write e.g. '%sx'", s, s);
		return cn_fail(err, CN_EINPUT, "expected a ratio such as '1.2x', got '%s'", s);
	}
	if (!is_decimal(s, n - 1) || to_double(s, n - 1, &v) < 0)
		return cn_fail(err, CN_EINPUT, "expected a ratio such as '1.2x', got '%s'", s);
	if (v <= 0)
		return cn_fail(err, CN_EINPUT, "ratio '%s' must be greater than 0x", s);
	*out = v;
	return 0;
}

static const struct {
	const char *name;
	int64_t ms;
} units[] = {
	{ "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 },
};
#define NUNITS ((int)(sizeof units / sizeof units[0]))

int cn_parse_duration_ms(const char *s, unsigned flags, int64_t *out_ms, struct cn_err *err)
{
	if (!s || !*s)
		return cn_fail(err, CN_EINPUT, "expected a duration such as '30s', got an empty value");
	if (s[0] == '-')
		return cn_fail(err, CN_EINPUT, "duration '%s' must not be negative", s);
	if ((flags & CN_DURATION_ALLOW_ZERO) && strcmp(s, "0") == 0) {
		*out_ms = 0;
		return 0;
	}
	int64_t total = 0;
	int last = -1; /* index into units of the previous group's unit */
	const char *p = s;
	while (*p) {
		if (*p < '0' || *p > '9')
			return cn_fail(err, CN_EINPUT,
				       "invalid duration '%s': expected a number at '%s'; write e.g. '30s' or '1h30m'", s, p);
		int64_t n = 0;
		const char *num = p;
		while (*p >= '0' && *p <= '9') {
			int d = *p - '0';
			if (n > (INT64_MAX - d) / 10)
				return cn_fail(err, CN_EINPUT, "duration '%s' is too large", s);
			n = n * 10 + d;
			p++;
		}
		if (*p == '.')
			return cn_fail(err, CN_EINPUT,
				       "invalid duration '%s': use whole numbers, with a smaller unit if needed (e.g. '1500ms')", s);
		const char *u = p;
		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
			p++;
		size_t ulen = (size_t)(p - u);
		if (ulen == 0) {
			if (*p == '\0')
				return cn_fail(err, CN_EINPUT,
					       "duration '%s' has no unit after '%.*s'; add one of ms, s, m, h, d (e.g. '%.*ss')",
					       s, (int)(u - num), num, (int)(u - num), num);
			return cn_fail(err, CN_EINPUT, "invalid duration '%s': unexpected '%c'", s, *p);
		}
		int k = -1;
		for (int i = 0; i < NUNITS; i++)
			if (strlen(units[i].name) == ulen && strncmp(units[i].name, u, ulen) == 0)
				k = i;
		if (k < 0)
			return cn_fail(err, CN_EINPUT, "unknown unit '%.*s' in duration '%s'; use ms, s, m, h or d",
				       (int)ulen, u, s);
		if (k <= last)
			return cn_fail(err, CN_EINPUT,
				       "invalid duration '%s': units must go from largest to smallest, each once (e.g. '1h30m')",
				       s);
		last = k;
		if (n > INT64_MAX / units[k].ms || total > INT64_MAX - n * units[k].ms)
			return cn_fail(err, CN_EINPUT, "duration '%s' is too large", s);
		total += n * units[k].ms;
	}
	if (total == 0 && !(flags & CN_DURATION_ALLOW_ZERO))
		return cn_fail(err, CN_EINPUT, "duration '%s' must be greater than zero", s);
	*out_ms = total;
	return 0;
}

char *cn_format_duration(int64_t ms, char *buf, size_t len)
{
	if (!buf || len == 0)
		return buf;
	buf[0] = '\0';
	if (ms <= 0) {
		snprintf(buf, len, ms == 0 ? "0s" : "-");
		return buf;
	}
	size_t used = 0;
	for (int i = 0; i < NUNITS && ms > 0; i++) {
		int64_t q = ms / units[i].ms;
		if (q == 0)
			continue;
		ms -= q * units[i].ms;
		int w = snprintf(buf + used, len - used, "%lld%s", (long long)q, units[i].name);
		if (w < 0 || (size_t)w >= len - used)
			break;
		used += (size_t)w;
	}
	return buf;
}

int cn_edit_distance(const char *a, const char *b)
{
	enum { N = 64 };
	size_t la = strlen(a), lb = strlen(b);
	if (la >= N || lb >= N)
		return 255;
	int d[N + 1][N + 1];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (int)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			int cost = a[i - 1] == b[j - 1] ? 0 : 1;
			int v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb] > 255 ? 255 : d[la][lb];
}
