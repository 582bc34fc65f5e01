/* Reads YAML text into a small tree with 1-based positions: UTF-8 and tab checks first (libyaml's own messages
 * for these are obscure), then libyaml events. Anchors, aliases, duplicate keys and several documents are refused. */
#include "canary/yaml.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "canary/file.h"

int cn_ld_fail(struct cn_load *ld, const struct cn_ynode *at, const char *fmt, ...)
{
	char msg[CN_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return cn_fail(ld->err, CN_EINPUT, "%s:%d:%d: %s", ld->origin, at ? at->line : 1, at ? at->col : 1, msg);
}

static int fail_at(const char *origin, struct cn_err *err, size_t line, size_t col, const char *msg)
{
	return cn_fail(err, CN_EINPUT, "%s:%zu:%zu: %s", origin, line, col, msg);
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if the bytes there are not valid UTF-8. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
	unsigned c = p[0];
	size_t n;
	unsigned min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, min = 0x10000;
	else
		return 0;
	if (avail < n)
		return 0;
	unsigned cp = c & (0x3f >> (n - 1));
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Refuses invalid UTF-8 (at the first bad byte) and tabs in indentation. Columns count characters, as libyaml's. */
static int precheck(const char *text, size_t len, const char *origin, struct cn_err *err)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t line = 1, col = 1, i = 0;
	bool indent = true;    /* still in the line's leading whitespace */
	size_t tab_col = 0;    /* column of the first tab in the leading whitespace, 0 if none */
	while (i < len) {
		size_t n = utf8_len(p + i, len - i);
		if (n == 0) {
			char msg[128];
			snprintf(msg, sizeof msg, "invalid utf-8 byte 0x%02x; save the file as utf-8", p[i]);
			return fail_at(origin, err, line, col, msg);
		}
		unsigned char c = p[i];
		if (c == '\n') {
			line++, col = 1, indent = true, tab_col = 0;
			i++;
			continue;
		}
		if (indent) {
			if (c == '\t') {
				if (!tab_col)
					tab_col = col;
			} else if (c != ' ' && c != '\r') {
				indent = false;
				if (tab_col)
					return fail_at(origin, err, line, tab_col,
						       "tab character used for indentation; use spaces");
			}
		}
		i += n;
		col++;
	}
	return 0;
}

struct builder {
	yaml_parser_t parser;
	const char *origin;
	struct cn_err *err;
	size_t nodes;
};

static int ev_fail(struct builder *b, const yaml_mark_t *m, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int ev_fail(struct builder *b, const yaml_mark_t *m, const char *fmt, ...)
{
	char msg[CN_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return fail_at(b->origin, b->err, m->line + 1, m->column + 1, msg);
}

static int next_event(struct builder *b, yaml_event_t *ev)
{
	if (yaml_parser_parse(&b->parser, ev))
		return 0;
	const yaml_parser_t *p = &b->parser;
	const char *problem = p->problem ? p->problem : "unknown problem";
	if (p->context)
		return cn_fail(b->err, CN_EINPUT, "%s:%zu:%zu: yaml syntax error: %s %s (started at line %zu, column %zu)",
			       b->origin, p->problem_mark.line + 1, p->problem_mark.column + 1, problem, p->context,
			       p->context_mark.line + 1, p->context_mark.column + 1);
	return cn_fail(b->err, CN_EINPUT, "%s:%zu:%zu: yaml syntax error: %s", b->origin, p->problem_mark.line + 1,
		       p->problem_mark.column + 1, problem);
}

void cn_ynode_free(struct cn_ynode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		cn_ynode_free(n->kids[i]);
	free(n->kids);
	free(n->text);
	free(n);
}

static struct cn_ynode *new_node(struct builder *b, enum cn_ykind kind, const yaml_mark_t *m)
{
	if (++b->nodes > CN_YAML_MAX_NODES) {
		ev_fail(b, m, "too many yaml nodes (more than %d); this does not look like a policy or service file",
			CN_YAML_MAX_NODES);
		return NULL;
	}
	struct cn_ynode *n = calloc(1, sizeof *n);
	if (!n) {
		cn_fail(b->err, CN_EINTERNAL, "out of memory reading %s", b->origin);
		return NULL;
	}
	n->kind = kind;
	n->line = (int)m->line + 1;
	n->col = (int)m->column + 1;
	return n;
}

static int add_kid(struct builder *b, struct cn_ynode *parent, struct cn_ynode *kid, size_t *cap)
{
	if (parent->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		struct cn_ynode **k = realloc(parent->kids, ncap * sizeof *k);
		if (!k)
			return cn_fail(b->err, CN_EINTERNAL, "out of memory reading %s", b->origin);
		parent->kids = k;
		*cap = ncap;
	}
	parent->kids[parent->n++] = kid;
	return 0;
}

static int build(struct builder *b, yaml_event_t *ev, struct cn_ynode **out, int depth);

/* Builds the children of a sequence or mapping whose start event was consumed, up to its end event. */
static int build_children(struct builder *b, struct cn_ynode *n, yaml_event_type_t end, int depth)
{
	size_t cap = 0;
	for (;;) {
		yaml_event_t ev;
		int rc = next_event(b, &ev);
		if (rc < 0)
			return rc;
		if (ev.type == end) {
			yaml_event_delete(&ev);
			return 0;
		}
		struct cn_ynode *kid = NULL;
		rc = build(b, &ev, &kid, depth + 1);
		yaml_event_delete(&ev);
		if (rc < 0)
			return rc;
		if (n->kind == CN_Y_MAP && n->n % 2 == 0) {
			/* a key */
			if (kid->kind != CN_Y_SCALAR) {
				cn_ld_fail(&(struct cn_load){ b->origin, b->err }, kid,
					   "mapping keys must be plain words, not %s", cn_ynode_kind_desc(kid));
				cn_ynode_free(kid);
				return -CN_EINPUT;
			}
			for (size_t i = 0; i < n->n; i += 2) {
				const struct cn_ynode *k = n->kids[i];
				if (k->len == kid->len && memcmp(k->text, kid->text, k->len) == 0) {
					cn_ld_fail(&(struct cn_load){ b->origin, b->err }, kid,
						   "duplicate key '%s' (first at line %d, column %d); remove one",
						   kid->text, k->line, k->col);
					cn_ynode_free(kid);
					return -CN_EINPUT;
				}
			}
		}
		rc = add_kid(b, n, kid, &cap);
		if (rc < 0) {
			cn_ynode_free(kid);
			return rc;
		}
	}
}

static int refuse_anchor(struct builder *b, const yaml_event_t *ev, const yaml_char_t *anchor)
{
	if (anchor)
		return ev_fail(b, &ev->start_mark, "yaml anchors ('&%s') are not supported; write the value out",
			       (const char *)anchor);
	return 0;
}

/* Builds the node that starts with event ev (which the caller deletes). */
static int build(struct builder *b, yaml_event_t *ev, struct cn_ynode **out, int depth)
{
	struct cn_ynode *n = NULL;
	int rc;
	if (depth > CN_YAML_MAX_DEPTH)
		return ev_fail(b, &ev->start_mark, "yaml nested too deeply (more than %d levels)", CN_YAML_MAX_DEPTH);
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		return ev_fail(b, &ev->start_mark, "yaml aliases ('*%s') are not supported; write the value out",
			       (const char *)ev->data.alias.anchor);
	case YAML_SCALAR_EVENT:
		if ((rc = refuse_anchor(b, ev, ev->data.scalar.anchor)) < 0)
			return rc;
		if (!(n = new_node(b, CN_Y_SCALAR, &ev->start_mark)))
			return -b->err->code;
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		n->len = ev->data.scalar.length;
		n->text = malloc(n->len + 1);
		if (!n->text) {
			rc = cn_fail(b->err, CN_EINTERNAL, "out of memory reading %s", b->origin);
			goto out;
		}
		memcpy(n->text, ev->data.scalar.value, n->len);
		n->text[n->len] = '\0';
		break;
	case YAML_SEQUENCE_START_EVENT:
		if ((rc = refuse_anchor(b, ev, ev->data.sequence_start.anchor)) < 0)
			return rc;
		if (!(n = new_node(b, CN_Y_SEQ, &ev->start_mark)))
			return -b->err->code;
		if ((rc = build_children(b, n, YAML_SEQUENCE_END_EVENT, depth)) < 0)
			goto out;
		break;
	case YAML_MAPPING_START_EVENT:
		if ((rc = refuse_anchor(b, ev, ev->data.mapping_start.anchor)) < 0)
			return rc;
		if (!(n = new_node(b, CN_Y_MAP, &ev->start_mark)))
			return -b->err->code;
		if ((rc = build_children(b, n, YAML_MAPPING_END_EVENT, depth)) < 0)
			goto out;
		break;
	default:
		return ev_fail(b, &ev->start_mark, "unexpected yaml event %d", (int)ev->type);
	}
	*out = n;
	return 0;
out:
	cn_ynode_free(n);
	return rc;
}

int cn_yaml_read(const char *text, size_t len, const char *origin, struct cn_ynode **root, struct cn_err *err)
{
	struct cn_err scratch;
	if (!err)
		err = &scratch;
	struct builder b = { .origin = origin ? origin : "<input>", .err = err };
	struct cn_ynode *doc = NULL;
	bool parser_ready = false;
	int rc;
	yaml_event_t ev;

	if (len > CN_YAML_MAX_BYTES)
		return cn_fail(err, CN_EINPUT, "%s:1:1: file is too large (%zu bytes; at most %d)", b.origin, len,
			       CN_YAML_MAX_BYTES);
	if ((rc = precheck(text, len, b.origin, err)) < 0)
		return rc;
	if (!yaml_parser_initialize(&b.parser))
		return cn_fail(err, CN_EINTERNAL, "cannot initialise the yaml parser");
	parser_ready = true;
	yaml_parser_set_input_string(&b.parser, (const unsigned char *)text, len);
	yaml_parser_set_encoding(&b.parser, YAML_UTF8_ENCODING);

	int docs = 0;
	for (;;) {
		if ((rc = next_event(&b, &ev)) < 0)
			goto out;
		yaml_event_type_t t = ev.type;
		if (t == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (t == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
			rc = ev_fail(&b, &ev.start_mark, "more than one yaml document; put one per file");
			yaml_event_delete(&ev);
			goto out;
		}
		if (t == YAML_SCALAR_EVENT || t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT ||
		    t == YAML_ALIAS_EVENT) {
			rc = build(&b, &ev, &doc, 0);
			yaml_event_delete(&ev);
			if (rc < 0)
				goto out;
			continue;
		}
		yaml_event_delete(&ev);
	}
	if (doc && cn_ynode_is_null(doc)) {
		cn_ynode_free(doc);
		doc = NULL;
	}
	*root = doc;
	doc = NULL;
	rc = 0;
out:
	cn_ynode_free(doc);
	if (parser_ready)
		yaml_parser_delete(&b.parser);
	return rc;
}

bool cn_ynode_is_null(const struct cn_ynode *n)
{
	if (!n || n->kind != CN_Y_SCALAR || !n->plain)
		return false;
	return n->len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 || strcmp(n->text, "Null") == 0 ||
	       strcmp(n->text, "NULL") == 0;
}

const struct cn_ynode *cn_ynode_get(const struct cn_ynode *map, const char *key)
{
	if (!map || map->kind != CN_Y_MAP)
		return NULL;
	for (size_t i = 0; i + 1 < map->n; i += 2)
		if (strcmp(map->kids[i]->text, key) == 0)
			return map->kids[i + 1];
	return NULL;
}

const char *cn_ynode_kind_desc(const struct cn_ynode *n)
{
	if (!n)
		return "nothing";
	switch (n->kind) {
	case CN_Y_MAP:
		return "a mapping";
	case CN_Y_SEQ:
		return "a list";
	case CN_Y_SCALAR:
		return cn_ynode_is_null(n) ? "no value" : "text";
	}
	return "something else";
}

int cn_read_file(const char *path, char **text, size_t *len, struct cn_err *err)
{
	return cn_file_read(path, CN_YAML_MAX_BYTES, 0, text, len, err);
}

int cn_yaml_load_file(const char *path, cn_yaml_parse_fn parse, void *out, char **source_out, struct cn_err *err)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	if ((rc = cn_read_file(path, &text, &len, err)) < 0)
		goto out;
	if ((rc = parse(text, len, path, out, err)) < 0)
		goto out;
	if (source_out) {
		*source_out = text;
		text = NULL;
	}
out:
	free(text);
	return rc;
}
