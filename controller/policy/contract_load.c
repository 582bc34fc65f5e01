/* The service file's `contract:` key: the response shape the service promises and its tools, each tool's arguments
 * described by a JSON Schema subset (type, required, properties, enum; description is kept for the model). The
 * subset is checked on the YAML tree, so every mistake points at its FILE:LINE:COL, and written out as JSON text for
 * the load generator, which validates answers against it (controller/load/contract.c). */
#include "policy_int.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/contract-t.h"
#include "canary/dynbuf.h"
#include "canary/parse.h"

#define KEYS(a) (a), (sizeof(a) / sizeof((a)[0]))
#define F(type, field) .offset = offsetof(type, field), .size = sizeof(((type *)0)->field)

static const char *const json_types[] = { "object", "array", "string", "number", "integer", "boolean", "null" };
#define NJSON_TYPES (sizeof json_types / sizeof json_types[0])
static const char *const schema_words[] = { "type", "required", "properties", "enum", "description" };
#define NSCHEMA_WORDS (sizeof schema_words / sizeof schema_words[0])

static int parse_parameters(struct cn_load *ld, const struct cn_key *key, void *obj, const struct cn_ynode *val);
static int check_contract(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals);

static const struct cn_enum_val response_words[] = {
	{ "openai", CN_RESPONSE_OPENAI }, { "none", CN_RESPONSE_NONE }, { NULL, 0 } };

static const struct cn_key tool_keys[] = {
	{ .name = "name", .type = CN_KT_NAME, .flags = CN_KEY_REQUIRED, F(struct cn_contract_tool, name), .min = NAN,
	  .max = NAN, .doc = "the function's name, as the requests' tools and the answers' tool calls give it" },
	{ .name = "parameters", .type = CN_KT_CUSTOM, .flags = CN_KEY_REQUIRED, .min = NAN, .max = NAN,
	  .parse = parse_parameters,
	  .doc = "JSON Schema of the call's arguments, the subset type, required, properties, enum (and description); "
		 "the root is type: object" },
};

static const struct cn_schema tool_schema = {
	.name = "tool", .keys = KEYS(tool_keys), .item_size = sizeof(struct cn_contract_tool),
	.max_items = CN_CONTRACT_MAX_TOOLS, .count_offset = offsetof(struct cn_contract, ntools),
};

static const struct cn_key contract_keys[] = {
	{ .name = "response", .type = CN_KT_ENUM, F(struct cn_contract, response), .def = "openai", .min = NAN,
	  .max = NAN, .enums = response_words,
	  .doc = "openai: every answer (and streamed chunk) has the OpenAI-compatible fields, typed | none: not checked" },
	{ .name = "tools", .type = CN_KT_LIST, .offset = offsetof(struct cn_contract, tools), .min = NAN, .max = NAN,
	  .sub = &tool_schema,
	  .doc = "the functions the model may call (sent as the chat requests' tools); every tool call's arguments must "
		 "validate against its parameters" },
};

const struct cn_schema cn_contract_schema = { .name = "contract", .keys = KEYS(contract_keys),
					      .check = check_contract };

static int check_contract(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals)
{
	struct cn_contract *c = obj;
	const struct cn_ynode *tools = cn_schema_val(&cn_contract_schema, vals, "tools");
	(void)map;
	for (int i = 0; i < c->ntools; i++)
		for (int j = 0; j < i; j++)
			if (strcmp(c->tools[i].name, c->tools[j].name) == 0)
				return cn_ld_fail(ld, cn_ynode_get(tools->kids[i], "name"),
						  "tool '%s' is declared twice; give each tool once", c->tools[i].name);
	c->declared = true;
	return 0;
}

static int type_index(const char *s)
{
	for (size_t i = 0; i < NJSON_TYPES; i++)
		if (strcmp(s, json_types[i]) == 0)
			return (int)i;
	return -1;
}

/* A scalar's JSON value: plain true/false/null and numbers as such, everything else a string. Sets *type to the
 * json_types index it has (integer numbers: "integer"). */
static void add_scalar(struct cn_dynbuf *b, const struct cn_ynode *n, int *type)
{
	if (n->plain && (strcmp(n->text, "true") == 0 || strcmp(n->text, "false") == 0)) {
		*type = 5;
		cn_dynbuf_adds(b, n->text);
		return;
	}
	if (n->plain && (strcmp(n->text, "null") == 0 || strcmp(n->text, "~") == 0 || n->text[0] == '\0')) {
		*type = 6;
		cn_dynbuf_adds(b, "null");
		return;
	}
	if (n->plain && n->text[0]) {
		char *end = NULL;
		errno = 0;
		double v = strtod(n->text, &end);
		if (errno == 0 && end && *end == '\0' && isfinite(v) && strspn(n->text, "+-0123456789.eE") == n->len) {
			*type = v == floor(v) && !strpbrk(n->text, ".eE") ? 4 : 3;
			cn_dynbuf_addf(b, "%.17g", v);
			return;
		}
	}
	*type = 2;
	cn_dynbuf_add_json_string(b, n->text, n->len);
}

/* Does a value of json type `have` fit the declared types (bits of json_types; 0: any)? An integer is a number. */
static bool fits(unsigned types, int have)
{
	if (types == 0)
		return true;
	if (types & (1u << have))
		return true;
	return have == 4 && (types & (1u << 3));
}

/* Checks one schema node of the subset at depth and writes it as JSON. */
static int walk_schema(struct cn_load *ld, const struct cn_ynode *n, int depth, const char *where, struct cn_dynbuf *b)
{
	if (n->kind != CN_Y_MAP)
		return cn_ld_fail(ld, n, "%s must be a mapping (type, properties, required, enum), got %s", where,
				  cn_ynode_kind_desc(n));
	if (depth > CN_CONTRACT_MAX_DEPTH)
		return cn_ld_fail(ld, n, "%s is nested more than %d levels deep; flatten the arguments", where,
				  CN_CONTRACT_MAX_DEPTH);
	const struct cn_ynode *type = NULL, *req = NULL, *props = NULL, *en = NULL, *desc = NULL;
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const struct cn_ynode *k = n->kids[i], *v = n->kids[i + 1];
		const struct cn_ynode **slot = strcmp(k->text, "type") == 0         ? &type
					       : strcmp(k->text, "required") == 0   ? &req
					       : strcmp(k->text, "properties") == 0 ? &props
					       : strcmp(k->text, "enum") == 0       ? &en
					       : strcmp(k->text, "description") == 0 ? &desc
										: NULL;
		if (!slot) {
			const char *best = NULL;
			for (size_t w = 0; w < NSCHEMA_WORDS; w++)
				if (cn_edit_distance(k->text, schema_words[w]) <= 2)
					best = schema_words[w];
			if (best)
				return cn_ld_fail(ld, k, "unknown key '%s' in %s (did you mean '%s'?)", k->text, where, best);
			return cn_ld_fail(ld, k, "unknown key '%s' in %s: the contract's JSON Schema subset has type, "
					  "required, properties, enum and description", k->text, where);
		}
		*slot = v;
	}
	unsigned types = 0;
	cn_dynbuf_adds(b, "{");
	bool first = true;
	if (type) {
		const struct cn_ynode *const *items = &type;
		size_t nitems = 1;
		if (type->kind == CN_Y_SEQ) {
			items = (const struct cn_ynode *const *)type->kids;
			nitems = type->n;
			if (nitems == 0)
				return cn_ld_fail(ld, type, "%s: type is an empty list; name at least one type", where);
		}
		cn_dynbuf_adds(b, "\"type\":");
		if (type->kind == CN_Y_SEQ)
			cn_dynbuf_adds(b, "[");
		for (size_t i = 0; i < nitems; i++) {
			const struct cn_ynode *t = items[i];
			int ti = t->kind == CN_Y_SCALAR ? type_index(t->text) : -1;
			if (ti < 0)
				return cn_ld_fail(ld, t, "%s: type '%s' is not one of object, array, string, number, integer, "
						  "boolean, null", where, t->kind == CN_Y_SCALAR ? t->text : "(not a word)");
			if (types & (1u << ti))
				return cn_ld_fail(ld, t, "%s: type '%s' is listed twice", where, t->text);
			types |= 1u << ti;
			cn_dynbuf_addf(b, "%s\"%s\"", i ? "," : "", json_types[ti]);
		}
		if (type->kind == CN_Y_SEQ)
			cn_dynbuf_adds(b, "]");
		first = false;
	} else if (depth == 0) {
		return cn_ld_fail(ld, n, "%s: a tool's parameters need 'type: object'", where);
	}
	if (depth == 0 && types != 1u)
		return cn_ld_fail(ld, type, "%s: a tool's parameters are an object; write 'type: object'", where);
	if (desc) {
		if (desc->kind != CN_Y_SCALAR)
			return cn_ld_fail(ld, desc, "%s: description must be text", where);
		cn_dynbuf_adds(b, first ? "\"description\":" : ",\"description\":");
		cn_dynbuf_add_json_string(b, desc->text, desc->len);
		first = false;
	}
	if (props) {
		if (types && !(types & 1u))
			return cn_ld_fail(ld, props, "%s: properties apply to objects, but its type does not allow one", where);
		if (props->kind != CN_Y_MAP)
			return cn_ld_fail(ld, props, "%s: properties must be a mapping of NAME: schema, got %s", where,
					  cn_ynode_kind_desc(props));
		cn_dynbuf_adds(b, first ? "\"properties\":{" : ",\"properties\":{");
		for (size_t i = 0; i + 1 < props->n; i += 2) {
			char sub[160];
			snprintf(sub, sizeof sub, "property '%s'", props->kids[i]->text);
			if (i)
				cn_dynbuf_adds(b, ",");
			cn_dynbuf_add_json_string(b, props->kids[i]->text, props->kids[i]->len);
			cn_dynbuf_adds(b, ":");
			int rc = walk_schema(ld, props->kids[i + 1], depth + 1, sub, b);
			if (rc < 0)
				return rc;
		}
		cn_dynbuf_adds(b, "}");
		first = false;
	}
	if (req) {
		if (types && !(types & 1u))
			return cn_ld_fail(ld, req, "%s: required applies to objects, but its type does not allow one", where);
		if (req->kind != CN_Y_SEQ)
			return cn_ld_fail(ld, req, "%s: required must be a list of property names, got %s", where,
					  cn_ynode_kind_desc(req));
		cn_dynbuf_adds(b, first ? "\"required\":[" : ",\"required\":[");
		for (size_t i = 0; i < req->n; i++) {
			const struct cn_ynode *r = req->kids[i];
			if (r->kind != CN_Y_SCALAR || r->len == 0)
				return cn_ld_fail(ld, r, "%s: required lists property names, got %s", where,
						  cn_ynode_kind_desc(r));
			if (props && !cn_ynode_get(props, r->text))
				return cn_ld_fail(ld, r, "%s: required '%s' is not among its properties", where, r->text);
			for (size_t j = 0; j < i; j++)
				if (strcmp(req->kids[j]->text, r->text) == 0)
					return cn_ld_fail(ld, r, "%s: required '%s' is listed twice", where, r->text);
			if (i)
				cn_dynbuf_adds(b, ",");
			cn_dynbuf_add_json_string(b, r->text, r->len);
		}
		cn_dynbuf_adds(b, "]");
		first = false;
	}
	if (en) {
		if (en->kind != CN_Y_SEQ || en->n == 0)
			return cn_ld_fail(ld, en, "%s: enum must be a non-empty list of values", where);
		cn_dynbuf_adds(b, first ? "\"enum\":[" : ",\"enum\":[");
		for (size_t i = 0; i < en->n; i++) {
			const struct cn_ynode *e = en->kids[i];
			int have = 0;
			if (e->kind != CN_Y_SCALAR)
				return cn_ld_fail(ld, e, "%s: enum values must be scalars, got %s", where,
						  cn_ynode_kind_desc(e));
			if (i)
				cn_dynbuf_adds(b, ",");
			add_scalar(b, e, &have);
			if (!fits(types, have))
				return cn_ld_fail(ld, e, "%s: enum value '%s' is a %s, which its type does not allow", where,
						  e->text, json_types[have]);
		}
		cn_dynbuf_adds(b, "]");
	}
	cn_dynbuf_adds(b, "}");
	return 0;
}

static int parse_parameters(struct cn_load *ld, const struct cn_key *key, void *obj, const struct cn_ynode *val)
{
	struct cn_contract_tool *t = obj;
	struct cn_dynbuf b;
	(void)key;
	cn_dynbuf_init(&b, sizeof t->parameters - 1);
	int rc = walk_schema(ld, val, 0, "parameters", &b);
	if (rc == 0 && cn_dynbuf_error(&b))
		rc = cn_ld_fail(ld, val, "parameters are longer than %zu bytes as JSON; simplify the schema",
				sizeof t->parameters - 1);
	if (rc == 0)
		memcpy(t->parameters, cn_dynbuf_ptr(&b), cn_dynbuf_len(&b) + 1);
	cn_dynbuf_free(&b);
	return rc;
}
