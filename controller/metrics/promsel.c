/* PromQL-like series selectors: parsing `name{label op "value", ...}`, matching label sets, writing PromQL. */
#include "canary/promtext.h"

#include <stdio.h>
#include <string.h>

static bool is_name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static bool is_name_char(char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9');
}

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static int sel_fail(struct cn_err *err, const char *text, const char *at, const char *what)
{
	return cn_fail(err, CN_EINPUT, "selector '%s' column %d: %s (write e.g. name{label=\"value\"})", text,
		       (int)(at - text) + 1, what);
}

/* Reads a quoted string at *pp into out (unescaped); advances *pp past the closing quote. */
static int parse_quoted(const char *text, const char **pp, char *out, size_t size, struct cn_err *err)
{
	const char *p = *pp;
	char q = *p;
	size_t n = 0;

	if (q != '"' && q != '\'')
		return sel_fail(err, text, p, "expected a quoted value");
	for (p++; *p && *p != q; p++) {
		char c = *p;
		if (c == '\\' && p[1]) {
			p++;
			switch (*p) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case '\\': case '"': case '\'': c = *p; break;
			default:  /* keep unknown escapes for the regex engine, e.g. \. */
				if (n + 1 >= size)
					return sel_fail(err, text, p, "value too long");
				out[n++] = '\\';
				c = *p;
			}
		}
		if (n + 1 >= size)
			return sel_fail(err, text, p, "value too long");
		out[n++] = c;
	}
	if (*p != q)
		return sel_fail(err, text, p, "unterminated quoted value");
	out[n] = '\0';
	*pp = p + 1;
	return 0;
}

static int compile(const char *text, struct cn_matcher *m, struct cn_err *err)
{
	char pat[CN_SELECTOR_MAX + 8];
	int rc;

	if (snprintf(pat, sizeof pat, "^(%s)$", m->value) >= (int)sizeof pat)
		return cn_fail(err, CN_EINPUT, "selector '%s': regex '%s' too long", text, m->value);
	rc = regcomp(&m->re, pat, REG_EXTENDED | REG_NOSUB);
	if (rc != 0) {
		char msg[128];
		regerror(rc, &m->re, msg, sizeof msg);
		return cn_fail(err, CN_EINPUT, "selector '%s': bad regex '%s': %s", text, m->value, msg);
	}
	m->compiled = true;
	return 0;
}

int cn_promsel_parse(const char *text, struct cn_promsel *out, struct cn_err *err)
{
	const char *p = skip_ws(text);
	size_t n = 0;
	int rc = 0;

	memset(out, 0, sizeof *out);
	if (is_name_start(*p)) {
		while (is_name_char(*p)) {
			if (n + 1 >= sizeof out->name) {
				rc = sel_fail(err, text, p, "metric name too long");
				goto out;
			}
			out->name[n++] = *p++;
		}
		out->name[n] = '\0';
	}
	p = skip_ws(p);
	if (*p == '{') {
		p = skip_ws(p + 1);
		while (*p != '}') {
			struct cn_matcher *m;
			if (out->nmatchers == CN_PROMSEL_MAX_MATCHERS) {
				rc = sel_fail(err, text, p, "too many label matchers");
				goto out;
			}
			m = &out->m[out->nmatchers];
			if (!is_name_start(*p) || *p == ':') {
				rc = sel_fail(err, text, p, "expected a label name");
				goto out;
			}
			for (n = 0; is_name_char(*p) && *p != ':'; p++) {
				if (n + 1 >= sizeof m->label) {
					rc = sel_fail(err, text, p, "label name too long");
					goto out;
				}
				m->label[n++] = *p;
			}
			m->label[n] = '\0';
			p = skip_ws(p);
			if (p[0] == '=' && p[1] == '~') {
				m->op = CN_MATCH_RE;
				p += 2;
			} else if (p[0] == '!' && p[1] == '~') {
				m->op = CN_MATCH_NRE;
				p += 2;
			} else if (p[0] == '!' && p[1] == '=') {
				m->op = CN_MATCH_NE;
				p += 2;
			} else if (p[0] == '=') {
				m->op = CN_MATCH_EQ;
				p += 1;
			} else {
				rc = sel_fail(err, text, p, "expected =, !=, =~ or !~");
				goto out;
			}
			p = skip_ws(p);
			rc = parse_quoted(text, &p, m->value, sizeof m->value, err);
			if (rc < 0)
				goto out;
			out->nmatchers++;
			if (m->op == CN_MATCH_RE || m->op == CN_MATCH_NRE) {
				rc = compile(text, m, err);
				if (rc < 0)
					goto out;
			}
			p = skip_ws(p);
			if (*p == ',')
				p = skip_ws(p + 1);
			else if (*p != '}') {
				rc = sel_fail(err, text, p, "expected ',' or '}'");
				goto out;
			}
		}
		p = skip_ws(p + 1);
	}
	if (*p != '\0')
		rc = sel_fail(err, text, p, "unexpected text");
out:
	if (rc < 0)
		cn_promsel_free(out);
	return rc;
}

void cn_promsel_free(struct cn_promsel *sel)
{
	if (!sel)
		return;
	for (int i = 0; i < sel->nmatchers && i < CN_PROMSEL_MAX_MATCHERS; i++) {
		if (sel->m[i].compiled) {
			regfree(&sel->m[i].re);
			sel->m[i].compiled = false;
		}
	}
	sel->nmatchers = 0;
}

bool cn_promsel_match(const struct cn_promsel *sel, const char *const *names, const char *const *values, int n)
{
	for (int i = 0; i < sel->nmatchers; i++) {
		const struct cn_matcher *m = &sel->m[i];
		const char *v = "";
		bool hit;

		for (int j = 0; j < n; j++) {
			if (strcmp(names[j], m->label) == 0) {
				v = values[j];
				break;
			}
		}
		switch (m->op) {
		case CN_MATCH_EQ: hit = strcmp(v, m->value) == 0; break;
		case CN_MATCH_NE: hit = strcmp(v, m->value) != 0; break;
		case CN_MATCH_RE: hit = regexec(&m->re, v, 0, NULL, 0) == 0; break;
		default:          hit = regexec(&m->re, v, 0, NULL, 0) != 0; break;
		}
		if (!hit)
			return false;
	}
	return true;
}

/* Appends s to buf at *len; returns -1 if it does not fit. */
static int put(char *buf, size_t size, size_t *len, const char *s, size_t n)
{
	if (*len + n + 1 > size)
		return -1;
	memcpy(buf + *len, s, n);
	*len += n;
	buf[*len] = '\0';
	return 0;
}

static int put_matchers(const struct cn_promsel *sel, char *buf, size_t size, size_t *len, bool *first)
{
	static const char *ops[] = { "=", "!=", "=~", "!~" };

	for (int i = 0; sel && i < sel->nmatchers; i++) {
		const struct cn_matcher *m = &sel->m[i];
		if (!*first && put(buf, size, len, ",", 1) < 0)
			return -1;
		*first = false;
		if (put(buf, size, len, m->label, strlen(m->label)) < 0 ||
		    put(buf, size, len, ops[m->op], strlen(ops[m->op])) < 0 || put(buf, size, len, "\"", 1) < 0)
			return -1;
		for (const char *v = m->value; *v; v++) {
			char esc[2] = { '\\', *v };
			int rc;
			if (*v == '"' || *v == '\\')
				rc = put(buf, size, len, esc, 2);
			else if (*v == '\n')
				rc = put(buf, size, len, "\\n", 2);
			else
				rc = put(buf, size, len, v, 1);
			if (rc < 0)
				return -1;
		}
		if (put(buf, size, len, "\"", 1) < 0)
			return -1;
	}
	return 0;
}

int cn_promsel_format(const struct cn_promsel *sel, const char *suffix, const struct cn_promsel *extra, char *buf,
		      size_t size, struct cn_err *err)
{
	size_t len = 0;
	bool first = true;

	if (size == 0)
		return cn_fail(err, CN_EINPUT, "selector '%s': no room to write it", sel->name);
	buf[0] = '\0';
	if (put(buf, size, &len, sel->name, strlen(sel->name)) < 0 ||
	    put(buf, size, &len, suffix ? suffix : "", suffix ? strlen(suffix) : 0) < 0 ||
	    put(buf, size, &len, "{", 1) < 0 || put_matchers(sel, buf, size, &len, &first) < 0 ||
	    put_matchers(extra, buf, size, &len, &first) < 0 || put(buf, size, &len, "}", 1) < 0)
		return cn_fail(err, CN_EINPUT, "selector '%s': longer than %zu bytes as promql", sel->name, size - 1);
	return 0;
}
