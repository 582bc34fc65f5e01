/* The inference-contract checker: arguments against the JSON Schema subset (types, required, properties, enum,
 * nesting), whole answers and streamed chunks of both endpoints, and hostile answers (deep nesting, huge arrays,
 * wrong types, missing fields, not JSON) that must be refused in bounded time and never crash. Table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/contract.h"
#include "canary/dynbuf.h"
#include "canary/profile-t.h"

static const char weather[] =
	"{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},\"unit\":{\"type\":\"string\","
	"\"enum\":[\"c\",\"f\"]},\"days\":{\"type\":\"integer\"},\"detail\":{\"type\":\"object\",\"properties\":"
	"{\"hourly\":{\"type\":\"boolean\"},\"level\":{\"type\":[\"integer\",\"null\"],\"enum\":[1,2,null]}},"
	"\"required\":[\"hourly\"]},\"tags\":{\"type\":\"array\"},\"score\":{\"type\":\"number\"}},"
	"\"required\":[\"city\",\"unit\"]}";

struct arg_case {
	const char *what;
	const char *args;
	bool ok;
	const char *part; /* in why when not ok */
};

static const struct arg_case arg_cases[] = {
	{ "minimal", "{\"city\":\"Paris\",\"unit\":\"c\"}", true, NULL },
	{ "all fields", "{\"city\":\"P\",\"unit\":\"f\",\"days\":3,\"detail\":{\"hourly\":true,\"level\":2},"
		       "\"tags\":[1,\"x\"],\"score\":1.5}", true, NULL },
	{ "integer is a number", "{\"city\":\"P\",\"unit\":\"c\",\"score\":3}", true, NULL },
	{ "null allowed by a type list", "{\"city\":\"P\",\"unit\":\"c\",\"detail\":{\"hourly\":false,\"level\":null}}",
	  true, NULL },
	{ "extra properties are allowed", "{\"city\":\"P\",\"unit\":\"c\",\"zzz\":[[[]]]}", true, NULL },
	{ "missing required", "{\"city\":\"Paris\"}", false, "$: required property 'unit' is missing" },
	{ "enum violated", "{\"city\":\"P\",\"unit\":\"kelvin\"}", false, "$.unit: \"kelvin\" is not one of" },
	{ "wrong type", "{\"city\":42,\"unit\":\"c\"}", false, "$.city: an integer where the schema wants \"string\"" },
	{ "number is not an integer", "{\"city\":\"P\",\"unit\":\"c\",\"days\":1.5}", false, "$.days: a number" },
	{ "nested required", "{\"city\":\"P\",\"unit\":\"c\",\"detail\":{}}", false,
	  "$.detail: required property 'hourly' is missing" },
	{ "nested enum", "{\"city\":\"P\",\"unit\":\"c\",\"detail\":{\"hourly\":true,\"level\":3}}", false,
	  "$.detail.level: 3 is not one of" },
	{ "not an object", "[\"Paris\",\"c\"]", false, "$: an array where the schema wants \"object\"" },
	{ "a bare string", "\"Paris\"", false, "$: a string" },
	{ "cut off", "{\"location\": \"Par", false, "arguments are not JSON" },
	{ "empty", "", false, "arguments are not JSON" },
	{ "null", "null", false, "$: null" },
	{ "string where an object is wanted", "{\"city\":\"P\",\"unit\":\"c\",\"detail\":\"yes\"}", false,
	  "$.detail: a string" },
};

static void test_arguments(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof arg_cases / sizeof arg_cases[0]; i++) {
		const struct arg_case *c = &arg_cases[i];
		char why[CN_CONTRACT_WHY_MAX] = "";
		bool ok = cn_contract_validate_text(weather, c->args, strlen(c->args), why, sizeof why);
		if (ok != c->ok || (!ok && !strstr(why, c->part)))
			fail_msg("%s: ok %d (wanted %d), why '%s' (wanted '%s')", c->what, ok, c->ok, why,
				 c->part ? c->part : "");
	}
}

static struct cn_contract_rt *compile(int endpoint)
{
	struct cn_contract c;
	struct cn_err err = { 0 };
	memset(&c, 0, sizeof c);
	c.declared = true;
	c.response = CN_RESPONSE_OPENAI;
	c.ntools = 1;
	snprintf(c.tools[0].name, sizeof c.tools[0].name, "get_weather");
	snprintf(c.tools[0].parameters, sizeof c.tools[0].parameters, "%s", weather);
	struct cn_contract_rt *rt = cn_contract_compile(&c, endpoint, &err);
	if (!rt)
		fail_msg("compile: %s", err.msg);
	return rt;
}

#define CHAT_HEAD "{\"id\":\"c1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\",\"choices\":"
#define CALL(args) \
	CHAT_HEAD "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"k\"," \
		  "\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"" args "\"}}]}," \
		  "\"finish_reason\":\"tool_calls\"}]}"

struct answer_case {
	const char *what;
	int endpoint;
	const char *body;
	bool ok;
	const char *part;
};

static const struct answer_case answer_cases[] = {
	{ "chat text", CN_ENDPOINT_CHAT,
	  CHAT_HEAD "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"hi\"},\"finish_reason\":\"length\"}],"
		    "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}", true, NULL },
	{ "chat tool call", CN_ENDPOINT_CHAT, CALL("{\\\"city\\\":\\\"P\\\",\\\"unit\\\":\\\"c\\\"}"), true, NULL },
	{ "tool call breaks the schema", CN_ENDPOINT_CHAT, CALL("{\\\"city\\\":\\\"P\\\"}"), false,
	  "tool_calls[0]: tool 'get_weather': $: required property 'unit' is missing" },
	{ "tool call arguments not JSON", CN_ENDPOINT_CHAT, CALL("{\\\"location\\\": \\\"Par"), false,
	  "arguments are not a JSON object" },
	{ "undeclared tool", CN_ENDPOINT_CHAT,
	  CHAT_HEAD "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"k\","
		    "\"type\":\"function\",\"function\":{\"name\":\"rm_rf\",\"arguments\":\"{}\"}}]},"
		    "\"finish_reason\":\"tool_calls\"}]}", false, "tool 'rm_rf' is not declared" },
	{ "arguments as an object, not a string", CN_ENDPOINT_CHAT,
	  CHAT_HEAD "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"k\","
		    "\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":{}}}]},"
		    "\"finish_reason\":\"tool_calls\"}]}", false, "arguments is an object, not string" },
	{ "missing choices", CN_ENDPOINT_CHAT, "{\"id\":\"c1\",\"object\":\"x\",\"created\":1,\"model\":\"m\"}", false,
	  "$.choices is missing" },
	{ "empty choices", CN_ENDPOINT_CHAT, CHAT_HEAD "[]}", false, "$.choices is empty" },
	{ "created as a string", CN_ENDPOINT_CHAT,
	  "{\"id\":\"c1\",\"object\":\"x\",\"created\":\"now\",\"model\":\"m\",\"choices\":[]}", false,
	  "$.created is a string, not integer" },
	{ "missing id", CN_ENDPOINT_COMPLETIONS, "{\"object\":\"x\",\"created\":1,\"model\":\"m\",\"choices\":[]}", false,
	  "$.id is missing" },
	{ "message missing", CN_ENDPOINT_CHAT, CHAT_HEAD "[{\"index\":0,\"finish_reason\":null}]}", false,
	  "$.choices[0].message is missing" },
	{ "completion text", CN_ENDPOINT_COMPLETIONS,
	  "{\"id\":\"c\",\"object\":\"text_completion\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
	  "\"text\":\" tok\",\"finish_reason\":\"length\"}]}", true, NULL },
	{ "completion text as a number", CN_ENDPOINT_COMPLETIONS,
	  "{\"id\":\"c\",\"object\":\"text_completion\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
	  "\"text\":7,\"finish_reason\":\"length\"}]}", false, "$.choices[0].text is an integer, not string" },
	{ "usage with a string count", CN_ENDPOINT_COMPLETIONS,
	  "{\"id\":\"c\",\"object\":\"t\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"text\":\"\","
	  "\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":\"3\",\"completion_tokens\":1}}", false,
	  "$.usage.prompt_tokens is a string" },
	{ "not JSON", CN_ENDPOINT_CHAT, "<html>502 Bad Gateway</html>", false, "the answer is not JSON" },
	{ "an array", CN_ENDPOINT_CHAT, "[1,2,3]", false, "not a JSON object" },
	{ "choice not an object", CN_ENDPOINT_CHAT, CHAT_HEAD "[7]}", false, "$.choices[0] is an integer" },
};

static void test_answers(void **state)
{
	(void)state;
	struct cn_contract_rt *rts[2] = { compile(CN_ENDPOINT_COMPLETIONS), compile(CN_ENDPOINT_CHAT) };
	for (size_t i = 0; i < sizeof answer_cases / sizeof answer_cases[0]; i++) {
		const struct answer_case *c = &answer_cases[i];
		char why[CN_CONTRACT_WHY_MAX] = "";
		bool ok = cn_contract_check_answer(rts[c->endpoint], c->body, strlen(c->body), why, sizeof why);
		if (ok != c->ok || (!ok && !strstr(why, c->part)))
			fail_msg("%s: ok %d (wanted %d), why '%s' (wanted '%s')", c->what, ok, c->ok, why,
				 c->part ? c->part : "");
	}
	assert_non_null(cn_contract_tools_json(rts[1]));
	assert_non_null(strstr(cn_contract_tools_json(rts[1]), "\"name\":\"get_weather\""));
	assert_null(cn_contract_tools_json(rts[0])); /* completions send no tools */
	cn_contract_rt_free(rts[0]);
	cn_contract_rt_free(rts[1]);
}

/* A streamed tool call whose arguments come in pieces is judged on the whole; a bad chunk is a violation. */
static void test_stream(void **state)
{
	(void)state;
	struct cn_contract_rt *rt = compile(CN_ENDPOINT_CHAT);
	static const char *const good[] = {
		"{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
		"\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"index\":0,\"id\":\"k\",\"type\":\"function\","
		"\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\"}}]},\"finish_reason\":null}]}",
		"{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
		"\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"P\\\",\\\"unit\\\":\"}}]},"
		"\"finish_reason\":null}]}",
		"{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
		"\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"f\\\"}\"}}]},"
		"\"finish_reason\":\"tool_calls\"}]}",
	};
	struct cn_contract_stream s;
	cn_contract_stream_init(&s);
	for (size_t i = 0; i < 3; i++)
		cn_contract_stream_chunk(rt, &s, good[i], strlen(good[i]));
	if (!cn_contract_stream_end(rt, &s))
		fail_msg("good stream refused: %s", s.why);
	cn_contract_stream_free(&s);

	/* the same with the last piece saying "kelvin" */
	cn_contract_stream_init(&s);
	cn_contract_stream_chunk(rt, &s, good[0], strlen(good[0]));
	cn_contract_stream_chunk(rt, &s, good[1], strlen(good[1]));
	const char *kelvin = "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":"
			     "[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
			     "\"\\\"kelvin\\\"}\"}}]},\"finish_reason\":null}]}";
	cn_contract_stream_chunk(rt, &s, kelvin, strlen(kelvin));
	assert_false(cn_contract_stream_end(rt, &s));
	assert_non_null(strstr(s.why, "$.unit: \"kelvin\" is not one of"));
	cn_contract_stream_free(&s);

	/* a chunk that is not JSON, and one without choices */
	static const char *const bad[][2] = {
		{ "{\"id\":", "a streamed chunk is not JSON" },
		{ "{\"id\":\"c\",\"object\":\"x\",\"created\":1,\"model\":\"m\"}", "$.choices is missing" },
		{ "{\"id\":\"c\",\"object\":\"x\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":"
		  "{\"tool_calls\":[{\"index\":99999}]}}]}", "index 99999" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cn_contract_stream_init(&s);
		cn_contract_stream_chunk(rt, &s, bad[i][0], strlen(bad[i][0]));
		assert_false(cn_contract_stream_end(rt, &s));
		if (!strstr(s.why, bad[i][1]))
			fail_msg("bad chunk %zu: why '%s', wanted '%s'", i, s.why, bad[i][1]);
		cn_contract_stream_free(&s);
	}
	cn_contract_rt_free(rt);
}

/* Hostile answers: nesting deeper than jansson takes, a million-element array, a huge object, a very long string.
 * Each is refused or accepted with the right words, without crashing (ASan) or recursing with the input. */
static void test_hostile(void **state)
{
	(void)state;
	struct cn_dynbuf b;
	char why[CN_CONTRACT_WHY_MAX];
	cn_dynbuf_init(&b, 64 * 1024 * 1024);

	/* 100,000 nested arrays as the arguments: not JSON for jansson (its depth limit), refused */
	for (int i = 0; i < 100000; i++)
		cn_dynbuf_add(&b, "[", 1);
	for (int i = 0; i < 100000; i++)
		cn_dynbuf_add(&b, "]", 1);
	assert_false(cn_contract_validate_text(weather, cn_dynbuf_ptr(&b), cn_dynbuf_len(&b), why, sizeof why));
	assert_non_null(strstr(why, "not JSON"));

	/* nesting within the limit under a property the schema does not describe: accepted, not descended into */
	cn_dynbuf_reset(&b);
	cn_dynbuf_adds(&b, "{\"city\":\"P\",\"unit\":\"c\",\"deep\":");
	for (int i = 0; i < 1000; i++)
		cn_dynbuf_add(&b, "[", 1);
	for (int i = 0; i < 1000; i++)
		cn_dynbuf_add(&b, "]", 1);
	cn_dynbuf_adds(&b, "}");
	assert_true(cn_contract_validate_text(weather, cn_dynbuf_ptr(&b), cn_dynbuf_len(&b), why, sizeof why));

	/* a million-element array where a string is wanted */
	cn_dynbuf_reset(&b);
	cn_dynbuf_adds(&b, "{\"unit\":\"c\",\"city\":[");
	for (int i = 0; i < 1000000; i++)
		cn_dynbuf_adds(&b, i ? ",0" : "0");
	cn_dynbuf_adds(&b, "]}");
	assert_int_equal(cn_dynbuf_error(&b), 0);
	assert_false(cn_contract_validate_text(weather, cn_dynbuf_ptr(&b), cn_dynbuf_len(&b), why, sizeof why));
	assert_non_null(strstr(why, "$.city: an array"));

	/* 100,000 keys, the required ones last; a 1 MB city name */
	cn_dynbuf_reset(&b);
	cn_dynbuf_adds(&b, "{");
	for (int i = 0; i < 100000; i++)
		cn_dynbuf_addf(&b, "\"k%d\":%d,", i, i);
	cn_dynbuf_adds(&b, "\"unit\":\"f\",\"city\":\"");
	for (int i = 0; i < 1024 * 1024; i++)
		cn_dynbuf_add(&b, "x", 1);
	cn_dynbuf_adds(&b, "\"}");
	assert_true(cn_contract_validate_text(weather, cn_dynbuf_ptr(&b), cn_dynbuf_len(&b), why, sizeof why));

	/* an enum miss on a huge value: the message shows only its head */
	cn_dynbuf_reset(&b);
	cn_dynbuf_adds(&b, "{\"city\":\"P\",\"unit\":\"");
	for (int i = 0; i < 100000; i++)
		cn_dynbuf_add(&b, "k", 1);
	cn_dynbuf_adds(&b, "\"}");
	assert_false(cn_contract_validate_text(weather, cn_dynbuf_ptr(&b), cn_dynbuf_len(&b), why, sizeof why));
	assert_true(strlen(why) < 120);
	assert_non_null(strstr(why, "..."));

	/* a NUL inside the answer */
	static const char nul[] = "{\"city\":\"P\0\",\"unit\":\"c\"}";
	assert_true(cn_contract_validate_text(weather, nul, sizeof nul - 1, why, sizeof why) ||
		    strstr(why, "not JSON"));
	cn_dynbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arguments),
		cmocka_unit_test(test_answers),
		cmocka_unit_test(test_stream),
		cmocka_unit_test(test_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
