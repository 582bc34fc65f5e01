/* The schema walker: fills a struct from a YAML mapping by following a declarative key table (struct cn_schema).
 * Defaults, types, ranges, required keys and did-you-mean hints for unknown keys all come from the table. */
#include "policy_int.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "canary/parse.h"

const char *cn_ktype_desc(enum cn_ktype t)
{
	switch (t) {
	case CN_KT_STRING: return "text";
	case CN_KT_NAME: return "a name (letters, digits, '.', '_', '-')";
	case CN_KT_URL: return "a url such as 'http://127.0.0.1:8001/metrics'";
	case CN_KT_DURATION: return "a duration such as '30s'";
	case CN_KT_DURATION0: return "a duration such as '30s' (or 0)";
	case CN_KT_PERCENT: return "a percentage such as '5%'";
	case CN_KT_FRACTION: return "a percentage such as '1%'";
	case CN_KT_RATIO: return "a ratio such as '1.2x'";
	case CN_KT_NUMBER: return "a number";
	case CN_KT_INT: return "a whole number";
	case CN_KT_BOOL: return "true or false";
	case CN_KT_ENUM: return "one of the listed words";
	case CN_KT_LIMIT: return "a percentage such as '1%', a duration such as '2s' or a number";
	case CN_KT_MAP: return "a mapping";
	case CN_KT_LIST: return "a list";
	case CN_KT_CUSTOM: return "a value";
	}
	return "a value";
}

bool cn_limit_is_number(const char *text)
{
	double d;
	struct cn_err e = { 0 };
	return cn_parse_number(text, &d, &e) == 0;
}

const struct cn_ynode *cn_schema_val(const struct cn_schema *sc, const struct cn_ynode *const *vals, const char *name)
{
	for (size_t i = 0; i < sc->nkeys; i++)
		if (strcmp(sc->keys[i].name, name) == 0)
			return vals[i];
	return NULL;
}

static bool is_double_type(enum cn_ktype t)
{
	return t == CN_KT_PERCENT || t == CN_KT_FRACTION || t == CN_KT_RATIO || t == CN_KT_NUMBER || t == CN_KT_LIMIT;
}

static void store_int(void *field, size_t size, int64_t v)
{
	if (size == sizeof(bool)) {
		bool b = v != 0;
		memcpy(field, &b, sizeof b);
	} else if (size == sizeof(int)) {
		int i = (int)v;
		memcpy(field, &i, sizeof i);
	} else {
		memcpy(field, &v, sizeof v);
	}
}

/* Formats a bound in the unit the user writes. */
static void fmt_bound(enum cn_ktype t, double v, char *buf, size_t len)
{
	switch (t) {
	case CN_KT_DURATION:
	case CN_KT_DURATION0:
		cn_format_duration((int64_t)v, buf, len);
		break;
	case CN_KT_PERCENT:
		snprintf(buf, len, "%g%%", v);
		break;
	case CN_KT_FRACTION:
		snprintf(buf, len, "%g%%", v * 100);
		break;
	case CN_KT_RATIO:
		snprintf(buf, len, "%gx", v);
		break;
	default:
		snprintf(buf, len, "%g", v);
	}
}

static int check_range(struct cn_load *ld, const struct cn_key *k, const struct cn_ynode *at, double v)
{
	char b[64];
	if (!isnan(k->min)) {
		bool excl = k->range & CN_RANGE_MIN_EXCL;
		if (excl ? !(v > k->min) : !(v >= k->min)) {
			fmt_bound(k->type, k->min, b, sizeof b);
			return cn_ld_fail(ld, at, "%s '%s' must be %s %s", k->name, at->text,
					  excl ? "greater than" : "at least", b);
		}
	}
	if (!isnan(k->max)) {
		bool excl = k->range & CN_RANGE_MAX_EXCL;
		if (excl ? !(v < k->max) : !(v <= k->max)) {
			fmt_bound(k->type, k->max, b, sizeof b);
			return cn_ld_fail(ld, at, "%s '%s' must be %s %s", k->name, at->text,
					  excl ? "less than" : "at most", b);
		}
	}
	return 0;
}

static int check_name(const char *s, struct cn_err *err)
{
	if (!*s)
		return cn_fail(err, CN_EINPUT, "expected a name, got an empty value");
	for (const char *p = s; *p; p++) {
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
			  ((*p == '.' || *p == '_' || *p == '-') && p != s);
		if (!ok)
			return cn_fail(err, CN_EINPUT,
				       "invalid name '%s': use letters, digits, '.', '_' and '-', starting with a letter or digit",
				       s);
	}
	return 0;
}

static int check_url(const char *s, struct cn_err *err)
{
	const char *rest = NULL;
	if (strncmp(s, "http://", 7) == 0)
		rest = s + 7;
	else if (strncmp(s, "https://", 8) == 0)
		rest = s + 8;
	if (!rest)
		return cn_fail(err, CN_EINPUT, "url '%s' must start with http:// or https://", s);
	if (!*rest || *rest == '/' || *rest == ':')
		return cn_fail(err, CN_EINPUT, "url '%s' has no host; write e.g. 'http://127.0.0.1:8001/metrics'", s);
	for (const char *p = s; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return cn_fail(err, CN_EINPUT, "url '%s' contains a space or control character", s);
	return 0;
}

/* Parses scalar text into the field for key k (no range check). Errors are plain messages without position. */
static int parse_scalar(const struct cn_key *k, const char *text, void *field, struct cn_err *err)
{
	int64_t i64;
	double d;
	bool b;
	int rc;

	switch (k->type) {
	case CN_KT_STRING:
	case CN_KT_NAME:
	case CN_KT_URL:
		if (strlen(text) >= k->size)
			return cn_fail(err, CN_EINPUT, "value is too long (%zu characters; at most %zu)", strlen(text),
				       k->size - 1);
		if (k->type == CN_KT_NAME && (rc = check_name(text, err)) < 0)
			return rc;
		if (k->type == CN_KT_URL && (rc = check_url(text, err)) < 0)
			return rc;
		memcpy(field, text, strlen(text) + 1);
		return 0;
	case CN_KT_DURATION:
	case CN_KT_DURATION0:
		if ((rc = cn_parse_duration_ms(text, k->type == CN_KT_DURATION0 ? CN_DURATION_ALLOW_ZERO : 0, &i64,
					       err)) < 0)
			return rc;
		memcpy(field, &i64, sizeof i64);
		return 0;
	case CN_KT_PERCENT:
	case CN_KT_FRACTION:
		if ((rc = cn_parse_percent(text, &d, err)) < 0)
			return rc;
		if (k->type == CN_KT_FRACTION)
			d /= 100;
		memcpy(field, &d, sizeof d);
		return 0;
	case CN_KT_RATIO:
		if ((rc = cn_parse_ratio(text, &d, err)) < 0)
			return rc;
		memcpy(field, &d, sizeof d);
		return 0;
	case CN_KT_NUMBER:
		if ((rc = cn_parse_number(text, &d, err)) < 0)
			return rc;
		memcpy(field, &d, sizeof d);
		return 0;
	case CN_KT_LIMIT:
		if (strchr(text, '%')) {
			if ((rc = cn_parse_percent(text, &d, err)) < 0)
				return rc;
			d /= 100;
		} else if (cn_limit_is_number(text)) {
			if ((rc = cn_parse_number(text, &d, err)) < 0)
				return rc;
		} else {
			if ((rc = cn_parse_duration_ms(text, 0, &i64, err)) < 0)
				return cn_fail(err, CN_EINPUT, "expected a percentage such as '1%%', a duration such as '2s' "
					       "or a number, got '%s'", text);
			d = (double)i64 / 1000.0;
		}
		memcpy(field, &d, sizeof d);
		return 0;
	case CN_KT_INT:
		if ((rc = cn_parse_int64(text, &i64, err)) < 0)
			return rc;
		if (k->size == sizeof(int) && (i64 > INT32_MAX || i64 < INT32_MIN))
			return cn_fail(err, CN_EINPUT, "whole number '%s' is out of range", text);
		store_int(field, k->size, i64);
		return 0;
	case CN_KT_BOOL:
		if ((rc = cn_parse_bool(text, &b, err)) < 0)
			return rc;
		memcpy(field, &b, sizeof b);
		return 0;
	case CN_KT_ENUM: {
		char list[256];
		size_t used = 0;
		for (const struct cn_enum_val *e = k->enums; e->name; e++) {
			if (strcmp(e->name, text) == 0) {
				store_int(field, k->size, e->value);
				return 0;
			}
			int w = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", e->name);
			if (w > 0 && (size_t)w < sizeof list - used)
				used += (size_t)w;
		}
		list[used] = '\0';
		return cn_fail(err, CN_EINPUT, "expected one of %s, got '%s'", list, text);
	}
	default:
		return cn_fail(err, CN_EINTERNAL, "key '%s' has no scalar form", k->name);
	}
}

/* The value as a number in stored units, for range checks; NAN when the type has no range. */
static double stored_number(const struct cn_key *k, const void *field)
{
	int64_t i64;
	int i;
	double d;
	switch (k->type) {
	case CN_KT_DURATION:
	case CN_KT_DURATION0:
		memcpy(&i64, field, sizeof i64);
		return (double)i64;
	case CN_KT_INT:
		if (k->size == sizeof(int)) {
			memcpy(&i, field, sizeof i);
			return i;
		}
		memcpy(&i64, field, sizeof i64);
		return (double)i64;
	default:
		if (is_double_type(k->type)) {
			memcpy(&d, field, sizeof d);
			return d;
		}
		return NAN;
	}
}

static int walk_list(struct cn_load *ld, const struct cn_key *k, char *obj, const struct cn_ynode *val)
{
	const struct cn_schema *sub = k->sub;
	if (val->kind != CN_Y_SEQ)
		return cn_ld_fail(ld, val, "'%s' must be a list of mappings (entries start with '- '), got %s", k->name,
				  cn_ynode_kind_desc(val));
	if (val->n == 0)
		return cn_ld_fail(ld, val, "'%s' must have at least one entry", k->name);
	if (val->n > sub->max_items)
		return cn_ld_fail(ld, val->kids[sub->max_items], "too many entries in '%s' (%zu; at most %zu)", k->name,
				  val->n, sub->max_items);
	for (size_t i = 0; i < val->n; i++) {
		char what[96];
		snprintf(what, sizeof what, "%s entry %zu", k->name, i + 1);
		int rc = cn_schema_walk(ld, sub, obj + k->offset + i * sub->item_size, val->kids[i], what);
		if (rc < 0)
			return rc;
	}
	store_int(obj + sub->count_offset, sizeof(int), (int64_t)val->n);
	return 0;
}

static int set_value(struct cn_load *ld, const struct cn_key *k, char *obj, const struct cn_ynode *val)
{
	struct cn_err perr;
	switch (k->type) {
	case CN_KT_MAP:
		if (val->kind != CN_Y_MAP)
			return cn_ld_fail(ld, val, "'%s' must be a mapping (indented 'key: value' lines), got %s", k->name,
					  cn_ynode_kind_desc(val));
		return cn_schema_walk(ld, k->sub, obj + k->offset, val, k->name);
	case CN_KT_LIST:
		return walk_list(ld, k, obj, val);
	case CN_KT_CUSTOM:
		return k->parse(ld, k, obj, val);
	default:
		break;
	}
	if (val->kind != CN_Y_SCALAR)
		return cn_ld_fail(ld, val, "'%s' must be %s, got %s", k->name, cn_ktype_desc(k->type),
				  cn_ynode_kind_desc(val));
	if (cn_ynode_is_null(val))
		return cn_ld_fail(ld, val, "'%s' has no value; expected %s", k->name, cn_ktype_desc(k->type));
	if (strlen(val->text) != val->len)
		return cn_ld_fail(ld, val, "'%s' contains a nul character", k->name);
	cn_err_clear(&perr);
	if (parse_scalar(k, val->text, obj + k->offset, &perr) < 0)
		return cn_ld_fail(ld, val, "%s: %s", k->name, perr.msg);
	double v = stored_number(k, obj + k->offset);
	if (!isnan(v))
		return check_range(ld, k, val, v);
	return 0;
}

/* Best did-you-mean candidate among the schema's keys, or NULL. */
static const char *suggest(const struct cn_schema *sc, const char *word)
{
	const char *best = NULL;
	int bestd = 3;
	size_t wl = strlen(word);
	for (size_t i = 0; i < sc->nkeys; i++) {
		int d = cn_edit_distance(word, sc->keys[i].name);
		int limit = wl <= 3 ? 1 : 2; /* short words: one edit only, so 'ttl' does not suggest 'max' */
		if (d <= limit && d < bestd) {
			best = sc->keys[i].name;
			bestd = d;
		}
	}
	return best;
}

static int apply_defaults(struct cn_load *ld, const struct cn_schema *sc, char *obj)
{
	for (size_t i = 0; i < sc->nkeys; i++) {
		const struct cn_key *k = &sc->keys[i];
		if (k->def) {
			struct cn_err perr;
			if (parse_scalar(k, k->def, obj + k->offset, &perr) < 0)
				return cn_fail(ld->err, CN_EINTERNAL, "bad default for '%s': %s", k->name, perr.msg);
		} else if (is_double_type(k->type)) {
			double nan = NAN;
			memcpy(obj + k->offset, &nan, sizeof nan);
		} else if (k->type == CN_KT_MAP) {
			/* an absent section still gets its defaults */
			int rc = apply_defaults(ld, k->sub, obj + k->offset);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

int cn_schema_walk(struct cn_load *ld, const struct cn_schema *sc, void *vobj, const struct cn_ynode *map,
		   const char *what)
{
	char *obj = vobj;
	const struct cn_ynode *vals[64] = { 0 };
	int rc;

	if (sc->nkeys > sizeof vals / sizeof vals[0])
		return cn_fail(ld->err, CN_EINTERNAL, "schema '%s' has too many keys", sc->name);
	if (map->kind != CN_Y_MAP)
		return cn_ld_fail(ld, map, "%s must be a mapping of 'key: value' lines, got %s", what,
				  cn_ynode_kind_desc(map));
	if ((rc = apply_defaults(ld, sc, obj)) < 0)
		return rc;
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct cn_ynode *key = map->kids[i], *val = map->kids[i + 1];
		size_t ki = sc->nkeys;
		for (size_t j = 0; j < sc->nkeys; j++)
			if (strcmp(sc->keys[j].name, key->text) == 0)
				ki = j;
		if (ki == sc->nkeys) {
			const char *s = suggest(sc, key->text);
			if (s)
				return cn_ld_fail(ld, key, "unknown key '%s' (did you mean '%s'?)", key->text, s);
			char known[256];
			size_t used = 0;
			for (size_t j = 0; j < sc->nkeys; j++) {
				int w = snprintf(known + used, sizeof known - used, "%s%s", j ? ", " : "", sc->keys[j].name);
				if (w < 0 || (size_t)w >= sizeof known - used)
					break;
				used += (size_t)w;
			}
			known[used] = '\0';
			return cn_ld_fail(ld, key, "unknown key '%s' in %s (known keys: %s)", key->text, what, known);
		}
		vals[ki] = val;
		if ((rc = set_value(ld, &sc->keys[ki], obj, val)) < 0)
			return rc;
	}
	for (size_t j = 0; j < sc->nkeys; j++)
		if ((sc->keys[j].flags & CN_KEY_REQUIRED) && !vals[j])
			return cn_ld_fail(ld, map, "missing required key '%s' in %s", sc->keys[j].name, what);
	if (sc->check)
		return sc->check(ld, obj, map, vals);
	return 0;
}

int cn_schema_parse(struct cn_load *ld, const char *text, size_t len, const struct cn_schema *sc, const char *what,
		    const char *empty, void *obj)
{
	struct cn_ynode *root = NULL;
	int rc = cn_yaml_read(text, len, ld->origin, &root, ld->err);
	if (rc < 0)
		return rc;
	if (!root)
		return cn_ld_fail(ld, NULL, "%s", empty);
	rc = cn_schema_walk(ld, sc, obj, root, what);
	cn_ynode_free(root);
	return rc < 0 ? rc : 0;
}
