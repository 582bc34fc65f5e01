/* The service file's contract: key: the JSON Schema subset is checked on the YAML tree (bad keys with a suggestion,
 * unknown types, required names that are not properties, enum values of the wrong type, nesting too deep) with
 * FILE:LINE:COL, and the schema is written out as the JSON the checker and the requests use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/service.h"

#define HEAD "name: chat\ngateway: { runtime_api: /tmp/h.sock, backend: b }\n" \
	     "slots:\n  blue: { server: blue, metrics_url: http://127.0.0.1:1/metrics }\n" \
	     "  green: { server: green, metrics_url: http://127.0.0.1:2/metrics }\nlive: blue\n"
/* HEAD is 6 lines: a contract starts on line 7 */

struct bad_case {
	const char *what;
	const char *text;
	int line, col;
	const char *part;
};

static const struct bad_case bad_cases[] = {
	{ "unknown contract key", HEAD "contract:\n  tool: []\n", 8, 3, "unknown key 'tool' (did you mean 'tools'?)" },
	{ "bad response", HEAD "contract: { response: grpc }\n", 7, 23, "expected one of openai, none" },
	{ "schema key typo", HEAD "contract:\n  tools:\n    - name: f\n      parameters:\n        type: object\n"
			       "        propertes: {}\n", 12, 9, "unknown key 'propertes' in parameters (did you mean 'properties'?)" },
	{ "root not an object", HEAD "contract:\n  tools:\n    - name: f\n      parameters: { type: string }\n", 10, 27,
	  "write 'type: object'" },
	{ "root without type", HEAD "contract:\n  tools:\n    - name: f\n      parameters: { properties: {} }\n", 10, 19,
	  "need 'type: object'" },
	{ "unknown type", HEAD "contract:\n  tools:\n    - name: f\n      parameters:\n        type: object\n"
			     "        properties:\n          a: { type: str }\n", 13, 22, "type 'str' is not one of" },
	{ "required not a property", HEAD "contract:\n  tools:\n    - name: f\n      parameters:\n        type: object\n"
					"        properties: { a: { type: string } }\n        required: [a, b]\n", 13, 23,
	  "required 'b' is not among its properties" },
	{ "enum of the wrong type", HEAD "contract:\n  tools:\n    - name: f\n      parameters:\n        type: object\n"
				       "        properties:\n          n: { type: integer, enum: [1, two] }\n", 13, 41,
	  "enum value 'two' is a string" },
	{ "empty enum", HEAD "contract:\n  tools:\n    - name: f\n      parameters:\n        type: object\n"
			   "        properties:\n          n: { enum: [] }\n", 13, 22, "non-empty list" },
	{ "properties on a string", HEAD "contract:\n  tools:\n    - name: f\n      parameters:\n        type: object\n"
				       "        properties:\n          s: { type: string, properties: {} }\n", 13, 42,
	  "properties apply to objects" },
	{ "tool twice", HEAD "contract:\n  tools:\n    - { name: f, parameters: { type: object } }\n"
			   "    - { name: f, parameters: { type: object } }\n", 10, 15, "declared twice" },
	{ "tool without parameters", HEAD "contract:\n  tools:\n    - name: f\n", 9, 7,
	  "missing required key 'parameters'" },
	{ "nested too deep", HEAD "contract:\n  tools:\n    - name: f\n      parameters:\n        type: object\n"
			       "        properties: { a: { properties: { b: { properties: { c: { properties: { d: "
			       "{ properties: { e: { properties: { f: { properties: { g: { properties: { h: { properties: "
			       "{ i: { type: string } } } } } } } } } } } } } } } } } }\n", 12, 0, "nested more than 8" },
	{ "parameters a list", HEAD "contract:\n  tools:\n    - name: f\n      parameters: [object]\n", 10, 19,
	  "must be a mapping" },
};

static void test_bad_inputs(void **state)
{
	(void)state;
	struct cn_service *s = calloc(1, sizeof *s);
	int bad = 0;
	assert_non_null(s);
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const struct bad_case *c = &bad_cases[i];
		struct cn_err err = { 0 };
		char where[64];
		int rc = cn_service_parse(c->text, strlen(c->text), "s.yaml", s, &err);
		if (c->col)
			snprintf(where, sizeof where, "s.yaml:%d:%d: ", c->line, c->col);
		else
			snprintf(where, sizeof where, "s.yaml:%d:", c->line);
		if (rc != -CN_EINPUT || strncmp(err.msg, where, strlen(where)) != 0 || !strstr(err.msg, c->part)) {
			print_error("%s: rc %d, message '%s'; wanted '%s...%s'\n", c->what, rc, err.msg, where, c->part);
			bad++;
		}
	}
	free(s);
	assert_int_equal(bad, 0);
}

static void test_example(void **state)
{
	(void)state;
	struct cn_service *s = calloc(1, sizeof *s);
	struct cn_err err = { 0 };
	const char *dir = getenv("CANARY_SOURCE_DIR");
	char path[1024];
	assert_non_null(s);
	assert_non_null(dir);
	snprintf(path, sizeof path, "%s/policies/chat-contract-service.yaml", dir);
	if (cn_service_load_file(path, s, NULL, &err) < 0)
		fail_msg("%s", err.msg);
	assert_true(s->contract.declared);
	assert_int_equal(s->contract.response, CN_RESPONSE_OPENAI);
	assert_int_equal(s->contract.ntools, 1);
	assert_string_equal(s->contract.tools[0].name, "get_weather");
	assert_string_equal(s->contract.tools[0].parameters,
			    "{\"type\":\"object\",\"description\":\"the weather at a place\",\"properties\":{\"city\":"
			    "{\"type\":\"string\"},\"unit\":{\"type\":\"string\",\"enum\":[\"c\",\"f\"]},\"days\":"
			    "{\"type\":\"integer\"}},\"required\":[\"city\",\"unit\"]}");
	/* without the key: no contract */
	const char *plain = HEAD;
	assert_int_equal(cn_service_parse(plain, strlen(plain), "s.yaml", s, &err), 0);
	assert_false(s->contract.declared);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_example),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
