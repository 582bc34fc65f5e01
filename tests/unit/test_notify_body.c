/* Webhook bodies: the json format is the outbox's event document plus its key as "id", nothing dropped; the slack
 * format says the event in words with text and blocks; a payload that is not a JSON object is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "canary/notify.h"

static const char PAYLOAD[] =
	"{\"event\": \"rolled_back\", \"at\": \"2026-11-02T10:00:00.000Z\", \"service\": \"chat\", \"actor\": \"canaryd\", "
	"\"reason\": \"slo 'p99-latency' failed\", \"audit_id\": 41, \"rollout\": {\"id\": 7, \"candidate\": \"v3\", "
	"\"baseline\": \"v2\", \"phase\": \"rolled_back\", \"step\": 1, \"steps\": 3, \"weight\": 0, "
	"\"policy\": \"chat\", \"policy_version\": 2}}";
static const char KEY[] = "0b5c7e4e-4f7d-4d0e-9d55-2d1b0c1f7a11";

static void test_json(void **state)
{
	(void)state;
	struct cn_err err = {0};
	char *body = cn_notify_body(CN_NOTIFY_JSON, KEY, PAYLOAD, &err);
	assert_non_null(body);
	json_t *doc = json_loads(body, 0, NULL), *want = json_loads(PAYLOAD, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "id")), KEY);
	json_object_del(doc, "id");
	assert_true(json_equal(doc, want));
	assert_null(strchr(body, '\n')); /* one line, compact: what is signed is what is sent */
	json_decref(doc);
	json_decref(want);
	free(body);
}

static void test_slack(void **state)
{
	(void)state;
	struct cn_err err = {0};
	char *body = cn_notify_body(CN_NOTIFY_SLACK, KEY, PAYLOAD, &err);
	assert_non_null(body);
	json_t *doc = json_loads(body, 0, NULL);
	const char *text = json_string_value(json_object_get(doc, "text"));
	assert_non_null(text);
	assert_non_null(strstr(text, "chat: rollout 7 of v3 ROLLED BACK, step 1/3, candidate at 0%: slo 'p99-latency' failed"));
	json_t *blocks = json_object_get(doc, "blocks");
	assert_int_equal(json_array_size(blocks), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(blocks, 0), "type")), "section");
	const char *ctx = json_string_value(
		json_object_get(json_array_get(json_object_get(json_array_get(blocks, 1), "elements"), 0), "text"));
	assert_non_null(strstr(ctx, KEY));
	assert_non_null(strstr(ctx, "policy chat v2"));
	json_decref(doc);
	free(body);
}

static void test_bad_payload(void **state)
{
	(void)state;
	struct cn_err err = {0};
	assert_null(cn_notify_body(CN_NOTIFY_JSON, KEY, "[1, 2]", &err));
	assert_int_equal(err.code, CN_EINPUT);
	assert_null(cn_notify_body(CN_NOTIFY_SLACK, KEY, "{not json", &err));
	assert_int_equal(err.code, CN_EINPUT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_slack),
		cmocka_unit_test(test_bad_payload),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
