/* The inference-contract checker (canary/contract.h): OpenAI-compatible answers and streamed chunks have their fields
 * present and typed, and every tool call names a declared tool whose JSON Schema subset its arguments fit. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/contract.h"
#include "canary/dynbuf.h"
#include "canary/profile-t.h"

#define CALLS_MAX 64                 /* tool calls in one streamed answer */
#define ARGS_MAX (1024 * 1024)       /* one tool call's arguments, put together from a stream */

struct cn_contract_rt {
	bool shape;                  /* check the OpenAI response shape */
	bool chat;
	int ntools;
	char names[CN_CONTRACT_MAX_TOOLS][CN_CONTRACT_NAME_MAX];
	json_t *params[CN_CONTRACT_MAX_TOOLS];
	char *tools_json;            /* the requests' "tools", NULL if none */
};

static bool fail(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(char *why, size_t n, const char *fmt, ...)
{
	if (why && n) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, n, fmt, ap);
		va_end(ap);
	}
	return false;
}

static const char *type_of(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "a value";
}

static bool is_type(const json_t *v, const char *t)
{
	if (strcmp(t, "object") == 0) return json_is_object(v);
	if (strcmp(t, "array") == 0) return json_is_array(v);
	if (strcmp(t, "string") == 0) return json_is_string(v);
	if (strcmp(t, "number") == 0) return json_is_number(v);
	if (strcmp(t, "integer") == 0) return json_is_integer(v);
	if (strcmp(t, "boolean") == 0) return json_is_boolean(v);
	if (strcmp(t, "null") == 0) return json_is_null(v);
	return false;
}

/* A short rendering of a value for messages. */
static void show(const json_t *v, char *buf, size_t n)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!s) {
		snprintf(buf, n, "%s", type_of(v));
		return;
	}
	if (strlen(s) > 40)
		snprintf(buf, n, "%.37s...", s);
	else
		snprintf(buf, n, "%s", s);
	free(s);
}

/* Validates v against schema node s (trusted: the loader wrote it). path names v, e.g. "$.unit". The recursion
 * follows the schema's properties only, so it is as deep as the schema, whatever v holds. */
static bool validate(const json_t *s, const json_t *v, const char *path, char *why, size_t n)
{
	const json_t *type = json_object_get(s, "type");
	if (type) {
		bool ok = false;
		if (json_is_string(type)) {
			ok = is_type(v, json_string_value(type));
		} else {
			size_t i;
			json_t *t;
			json_array_foreach(type, i, t) ok = ok || is_type(v, json_string_value(t));
		}
		if (!ok) {
			char *want = json_dumps(type, JSON_COMPACT | JSON_ENCODE_ANY);
			bool r = fail(why, n, "%s: %s where the schema wants %s", path, type_of(v), want ? want : "?");
			free(want);
			return r;
		}
	}
	const json_t *en = json_object_get(s, "enum");
	if (en) {
		size_t i;
		json_t *e;
		bool found = false;
		json_array_foreach(en, i, e) {
			/* 1 and 1.0 are one number in JSON */
			if (json_equal(e, v) || (json_is_number(e) && json_is_number(v) &&
						 json_number_value(e) == json_number_value(v))) {
				found = true;
				break;
			}
		}
		if (!found) {
			char shown[48];
			show(v, shown, sizeof shown);
			return fail(why, n, "%s: %s is not one of the enum's values", path, shown);
		}
	}
	if (!json_is_object(v))
		return true;
	const json_t *req = json_object_get(s, "required");
	size_t i;
	json_t *r;
	json_array_foreach(req, i, r) {
		if (!json_object_get(v, json_string_value(r)))
			return fail(why, n, "%s: required property '%s' is missing", path, json_string_value(r));
	}
	const json_t *props = json_object_get(s, "properties");
	const char *k;
	json_t *ps;
	json_object_foreach((json_t *)props, k, ps) {
		const json_t *pv = json_object_get(v, k);
		if (!pv)
			continue;
		char sub[256];
		snprintf(sub, sizeof sub, "%s.%s", path, k);
		if (!validate(ps, pv, sub, why, n))
			return false;
	}
	return true;
}

bool cn_contract_validate_text(const char *schema, const char *value, size_t len, char *why, size_t whylen)
{
	json_error_t je;
	json_t *s = json_loads(schema, 0, &je);
	if (!s)
		return fail(why, whylen, "the schema is not JSON: %s", je.text);
	json_t *v = json_loadb(value, len, JSON_DECODE_ANY, &je);
	bool ok = v ? validate(s, v, "$", why, whylen) : fail(why, whylen, "arguments are not JSON: %s", je.text);
	json_decref(v);
	json_decref(s);
	return ok;
}

struct cn_contract_rt *cn_contract_compile(const struct cn_contract *c, int endpoint, struct cn_err *err)
{
	struct cn_contract_rt *rt = calloc(1, sizeof *rt);
	json_t *tools = NULL;
	if (!rt) {
		cn_fail(err, CN_EINTERNAL, "out of memory");
		return NULL;
	}
	rt->shape = c->response == CN_RESPONSE_OPENAI;
	rt->chat = endpoint == CN_ENDPOINT_CHAT;
	if (!(tools = json_array()))
		goto oom;
	for (int i = 0; i < c->ntools && i < CN_CONTRACT_MAX_TOOLS; i++) {
		json_error_t je;
		snprintf(rt->names[i], sizeof rt->names[i], "%s", c->tools[i].name);
		rt->params[i] = json_loads(c->tools[i].parameters, 0, &je);
		rt->ntools = i + 1;
		if (!rt->params[i]) {
			cn_fail(err, CN_EINPUT, "contract: tool '%s': parameters are not JSON: %s", c->tools[i].name,
				je.text);
			goto fail;
		}
		if (json_array_append_new(tools, json_pack("{s:s, s:{s:s, s:O}}", "type", "function", "function",
							    "name", rt->names[i], "parameters", rt->params[i])) < 0)
			goto oom;
	}
	if (rt->ntools > 0 && rt->chat && !(rt->tools_json = json_dumps(tools, JSON_COMPACT)))
		goto oom;
	json_decref(tools);
	return rt;
oom:
	cn_fail(err, CN_EINTERNAL, "out of memory");
fail:
	json_decref(tools);
	cn_contract_rt_free(rt);
	return NULL;
}

void cn_contract_rt_free(struct cn_contract_rt *rt)
{
	if (!rt)
		return;
	for (int i = 0; i < rt->ntools; i++)
		json_decref(rt->params[i]);
	free(rt->tools_json);
	free(rt);
}

const char *cn_contract_tools_json(const struct cn_contract_rt *rt)
{
	return rt ? rt->tools_json : NULL;
}

/* Field f of object o has one of the JSON types in `types` ("string", "string|null" ...); absent fails unless
 * optional. */
static bool field(const json_t *o, const char *path, const char *f, const char *types, bool optional, char *why,
		  size_t n)
{
	const json_t *v = json_object_get(o, f);
	if (!v)
		return optional ? true : fail(why, n, "%s.%s is missing", path, f);
	char buf[64];
	snprintf(buf, sizeof buf, "%s", types);
	for (char *save = NULL, *t = strtok_r(buf, "|", &save); t; t = strtok_r(NULL, "|", &save))
		if (is_type(v, t))
			return true;
	return fail(why, n, "%s.%s is %s, not %s", path, f, type_of(v), types);
}

static int tool_index(const struct cn_contract_rt *rt, const char *name)
{
	for (int i = 0; i < rt->ntools; i++)
		if (strcmp(rt->names[i], name) == 0)
			return i;
	return -1;
}

/* One tool call's name and arguments (text) against the declared tools. */
static bool check_call(const struct cn_contract_rt *rt, const char *path, const char *name, const char *args,
		       size_t alen, char *why, size_t n)
{
	if (rt->ntools == 0)
		return true;
	int t = tool_index(rt, name);
	if (t < 0)
		return fail(why, n, "%s: tool '%s' is not declared in the contract", path, name);
	json_error_t je;
	json_t *v = json_loadb(args, alen, 0, &je);
	if (!v)
		return fail(why, n, "%s: tool '%s': arguments are not a JSON object: %s", path, name, je.text);
	char inner[CN_CONTRACT_WHY_MAX];
	bool ok = validate(rt->params[t], v, "$", inner, sizeof inner);
	json_decref(v);
	return ok ? true : fail(why, n, "%s: tool '%s': %s", path, name, inner);
}

/* A whole answer's or a chunk's tool_calls array (shape, and for a whole answer the arguments too). */
static bool check_tool_calls(const struct cn_contract_rt *rt, const json_t *calls, const char *path, bool chunk,
			     char *why, size_t n)
{
	size_t i;
	json_t *c;
	if (!json_is_array(calls))
		return fail(why, n, "%s is %s, not an array", path, type_of(calls));
	json_array_foreach(calls, i, c) {
		char p[96];
		snprintf(p, sizeof p, "%s[%zu]", path, i);
		if (!json_is_object(c))
			return fail(why, n, "%s is %s, not an object", p, type_of(c));
		if (chunk) {
			if (!field(c, p, "index", "integer", false, why, n))
				return false;
		} else if (!field(c, p, "id", "string", false, why, n) || !field(c, p, "type", "string", false, why, n)) {
			return false;
		}
		const json_t *fn = json_object_get(c, "function");
		char fp[112];
		snprintf(fp, sizeof fp, "%s.function", p);
		if (!fn && chunk)
			continue;
		if (!json_is_object(fn))
			return fail(why, n, "%s is %s, not an object", fp, fn ? type_of(fn) : "missing");
		if (!field(fn, fp, "name", "string", chunk, why, n) || !field(fn, fp, "arguments", "string", chunk, why, n))
			return false;
		if (!chunk) {
			const json_t *a = json_object_get(fn, "arguments");
			if (!check_call(rt, p, json_string_value(json_object_get(fn, "name")), json_string_value(a),
					json_string_length(a), why, n))
				return false;
		}
	}
	return true;
}

/* The OpenAI fields of an answer or a chunk. */
static bool check_doc(const struct cn_contract_rt *rt, const json_t *d, bool chunk, char *why, size_t n)
{
	if (!json_is_object(d))
		return fail(why, n, "the answer is %s, not a JSON object", type_of(d));
	if (rt->shape && (!field(d, "$", "id", "string", false, why, n) || !field(d, "$", "object", "string", false, why, n) ||
			  !field(d, "$", "created", "integer", false, why, n) ||
			  !field(d, "$", "model", "string", false, why, n)))
		return false;
	const json_t *ch = json_object_get(d, "choices");
	if (!json_is_array(ch))
		return fail(why, n, "$.choices is %s, not an array", ch ? type_of(ch) : "missing");
	if (!chunk && json_array_size(ch) == 0)
		return fail(why, n, "$.choices is empty");
	size_t i;
	json_t *c;
	json_array_foreach(ch, i, c) {
		char p[64];
		snprintf(p, sizeof p, "$.choices[%zu]", i);
		if (!json_is_object(c))
			return fail(why, n, "%s is %s, not an object", p, type_of(c));
		if (rt->shape && (!field(c, p, "index", "integer", false, why, n) ||
				  !field(c, p, "finish_reason", "string|null", chunk, why, n)))
			return false;
		if (!rt->chat) {
			if (rt->shape && !field(c, p, "text", "string", false, why, n))
				return false;
			continue;
		}
		const char *mk = chunk ? "delta" : "message";
		const json_t *m = json_object_get(c, mk);
		char mp[80];
		snprintf(mp, sizeof mp, "%s.%s", p, mk);
		if (!json_is_object(m))
			return fail(why, n, "%s is %s, not an object", mp, m ? type_of(m) : "missing");
		if (rt->shape && (!field(m, mp, "role", "string", chunk, why, n) ||
				  !field(m, mp, "content", "string|null", chunk, why, n)))
			return false;
		const json_t *tc = json_object_get(m, "tool_calls");
		char tp[96];
		snprintf(tp, sizeof tp, "%s.tool_calls", mp);
		if (tc && !json_is_null(tc) && !check_tool_calls(rt, tc, tp, chunk, why, n))
			return false;
	}
	const json_t *u = json_object_get(d, "usage");
	if (rt->shape && u && !json_is_null(u)) {
		if (!json_is_object(u))
			return fail(why, n, "$.usage is %s, not an object", type_of(u));
		if (!field(u, "$.usage", "prompt_tokens", "integer", false, why, n) ||
		    !field(u, "$.usage", "completion_tokens", "integer", false, why, n))
			return false;
	}
	return true;
}

bool cn_contract_check_answer(const struct cn_contract_rt *rt, const char *body, size_t len, char *why, size_t whylen)
{
	json_error_t je;
	json_t *d = json_loadb(body, len, 0, &je);
	if (!d)
		return fail(why, whylen, "the answer is not JSON: %s", je.text);
	bool ok = check_doc(rt, d, false, why, whylen);
	json_decref(d);
	return ok;
}

void cn_contract_stream_init(struct cn_contract_stream *s)
{
	memset(s, 0, sizeof *s);
}

/* Adds a chunk's tool-call pieces to the calls put together so far (by index: name, then the arguments' text). */
static void assemble(struct cn_contract_stream *s, const json_t *d)
{
	size_t i, j;
	json_t *c, *tc;
	json_array_foreach(json_object_get(d, "choices"), i, c) {
		json_array_foreach(json_object_get(json_object_get(c, "delta"), "tool_calls"), j, tc) {
			json_int_t idx = json_integer_value(json_object_get(tc, "index"));
			if (idx < 0 || idx >= CALLS_MAX) {
				s->bad = true;
				snprintf(s->why, sizeof s->why, "a streamed tool call has index %lld (at most %d are kept)",
					 (long long)idx, CALLS_MAX - 1);
				return;
			}
			if (!s->calls)
				s->calls = json_array();
			json_t *calls = s->calls;
			while (calls && json_array_size(calls) <= (size_t)idx)
				json_array_append_new(calls, json_pack("{s:s, s:s}", "name", "", "arguments", ""));
			json_t *call = json_array_get(calls, (size_t)idx);
			const json_t *fn = json_object_get(tc, "function");
			const char *name = json_string_value(json_object_get(fn, "name"));
			const char *args = json_string_value(json_object_get(fn, "arguments"));
			if (!call)
				return;
			if (name && *name)
				json_object_set_new(call, "name", json_string(name));
			if (args && *args) {
				const json_t *have = json_object_get(call, "arguments");
				size_t hl = json_string_length(have), al = strlen(args);
				if (hl + al > ARGS_MAX) {
					s->bad = true;
					snprintf(s->why, sizeof s->why, "a streamed tool call's arguments exceed %d bytes",
						 ARGS_MAX);
					return;
				}
				char *joined = malloc(hl + al + 1);
				if (!joined)
					return;
				memcpy(joined, json_string_value(have), hl);
				memcpy(joined + hl, args, al + 1);
				json_object_set_new(call, "arguments", json_stringn(joined, hl + al));
				free(joined);
			}
		}
	}
}

void cn_contract_stream_chunk(const struct cn_contract_rt *rt, struct cn_contract_stream *s, const char *data,
			      size_t len)
{
	if (s->bad)
		return;
	json_error_t je;
	json_t *d = json_loadb(data, len, 0, &je);
	if (!d) {
		s->bad = true;
		snprintf(s->why, sizeof s->why, "a streamed chunk is not JSON: %s", je.text);
		return;
	}
	if (!check_doc(rt, d, true, s->why, sizeof s->why))
		s->bad = true;
	else if (rt->chat)
		assemble(s, d);
	json_decref(d);
}

bool cn_contract_stream_end(const struct cn_contract_rt *rt, struct cn_contract_stream *s)
{
	if (s->bad)
		return false;
	size_t i;
	json_t *c;
	json_array_foreach((json_t *)s->calls, i, c) {
		char p[64];
		snprintf(p, sizeof p, "tool_calls[%zu]", i);
		const json_t *a = json_object_get(c, "arguments");
		if (!check_call(rt, p, json_string_value(json_object_get(c, "name")), json_string_value(a),
				json_string_length(a), s->why, sizeof s->why)) {
			s->bad = true;
			return false;
		}
	}
	return true;
}

void cn_contract_stream_free(struct cn_contract_stream *s)
{
	if (!s)
		return;
	json_decref(s->calls);
	s->calls = NULL;
}
