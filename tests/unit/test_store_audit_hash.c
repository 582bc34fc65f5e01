/* Unit: cn_audit_hash pinned to digests computed before SHA-256 moved to OpenSSL's EVP interface (the chain in every
 * existing database must keep verifying): the global chain with NULL fields, a rollout chain linked through
 * prev_hash, and multi-byte UTF-8 (field lengths count bytes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "canary/store_audit.h"

static void test_pinned(void **state)
{
	(void)state;
	static const struct {
		const char *prev; /* NULL: the previous case's hash */
		struct cn_audit_event ev;
		const char *hex;
	} cases[] = {
		{CN_AUDIT_GENESIS,
		 {.id = 1, .at_us = 1764600000000000, .recorded_by = "canary_daemon", .actor = "canaryd"},
		 "8ffd7886f3f3df82d5225f3edc52aa1635a8c4cb9bfe137f44ebc24c7132d581"},
		{CN_AUDIT_GENESIS,
		 {.id = 7, .at_us = 1764600001234567, .recorded_by = "canary_operator", .actor = "alice",
		  .has_rollout = true, .rollout_id = 42, .service = "chat", .kind = "rollout.started",
		  .reason = "new model", .data = "{\"to\": \"v2\", \"from\": \"v1\"}"},
		 "b2a44ab384f663dfe5aa24417f8eeca51ef84fec1fa90dc4b41caff50a53688d"},
		{NULL,
		 {.id = 8, .at_us = 1764600061000000, .recorded_by = "canary_daemon", .actor = "canaryd",
		  .has_rollout = true, .rollout_id = 42, .service = "chat", .kind = "rollout.aborted",
		  .reason = "p99 latency 412 ms > 300 ms — SLO \"latency\"", .data = "{\"weight\": 5}"},
		 "2beffd0c8b9c537de8f7927c26c73203408d4b7ff3c7b2133a7b2aef2bbb7813"},
		{NULL,
		 {.id = -3, .at_us = 0, .recorded_by = "", .actor = "", .has_rollout = true, .rollout_id = 0,
		  .service = "", .kind = "", .reason = "", .data = ""},
		 "91ee50c0dfa00972db2c5f5841849f31c170a1266fae5321f471c754499d1175"},
	};
	char hex[CN_SHA256_HEX_LEN], prev[CN_SHA256_HEX_LEN] = "";
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *p = cases[i].prev ? cases[i].prev : prev;
		assert_ptr_equal(cn_audit_hash(p, &cases[i].ev, hex), hex);
		assert_string_equal(hex, cases[i].hex);
		memcpy(prev, hex, sizeof prev);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pinned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
