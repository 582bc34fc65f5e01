/* Integration: services in a real Postgres (DATABASE_URL): first apply sets the live slot, same content -> same
 * version, changed -> new version keeping the live slot, show tells live and idle, failures write nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "canary/service.h"
#include "canary/store.h"
#include "store_fixture.h"

/* Loads a service from text written to a temp file; returns the source (the caller frees it). */
static char *load_text(const char *text, struct cn_service *sv)
{
	struct cn_err err = {0};
	char *source = NULL;
	const char *path = store_ctx_temp_file("canary-service", text);
	if (cn_service_load_file(path, sv, &source, &err) != 0)
		fail_msg("load: %s", err.msg);
	unlink(path);
	return source;
}

static const char service_v1[] = "name: shop\n"
				 "gateway:\n"
				 "  runtime_api: 127.0.0.1:9999\n"
				 "  backend: shop\n"
				 "slots:\n"
				 "  blue:  { server: b1, metrics_url: http://127.0.0.1:18001/metrics }\n"
				 "  green: { server: g1, metrics_url: http://127.0.0.1:18002/metrics }\n"
				 "live: green\n";

static void test_apply_versions(void **state)
{
	struct store_ctx *c = *state;
	struct cn_service sv;
	struct cn_err err = {0};
	int version = -1;
	bool created = false;
	char *src = load_text(service_v1, &sv);

	assert_int_equal(cn_store_service_apply(c->s, &sv, src, &version, &created, &err), 0);
	assert_int_equal(version, 1);
	assert_true(created);
	assert_int_equal(store_ctx_scalar(c, "SELECT live_slot FROM services WHERE name = 'shop'"), 1); /* green */
	assert_int_equal(cn_store_service_apply(c->s, &sv, src, &version, &created, &err), 0);
	assert_int_equal(version, 1);
	assert_false(created);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM service_versions"), 1);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM audit_events WHERE kind = 'service.applied'"
				   " AND service = 'shop'"),
			 1);
	free(src);

	/* the control loop promoted blue meanwhile: a changed file makes version 2 and keeps the live slot */
	assert_int_equal(pg_fixture_exec(c->db.conninfo, "UPDATE services SET live_slot = 0", NULL, 0), 0);
	char v2[sizeof service_v1];
	snprintf(v2, sizeof v2, "%s", service_v1);
	char *port = strstr(v2, "9999");
	assert_non_null(port);
	port[3] = '8';
	src = load_text(v2, &sv);
	assert_int_equal(cn_store_service_apply(c->s, &sv, src, &version, &created, &err), 0);
	assert_int_equal(version, 2);
	assert_true(created);
	free(src);
	assert_int_equal(store_ctx_scalar(c, "SELECT live_slot FROM services WHERE name = 'shop'"), 0);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM service_versions WHERE service = 'shop'"), 2);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM service_versions WHERE version = 2"
				   " AND spec->'gateway'->>'runtime_api' = '127.0.0.1:9998'"),
			 1);

	/* show: the live and idle slots follow services.live_slot */
	struct cn_service_list *doc = NULL;
	assert_int_equal(cn_store_service_show(c->s, "shop", &doc, &err), 0);
	assert_int_equal(doc->n, 1);
	assert_int_equal(doc->items[0].version, 2);
	assert_string_equal(doc->items[0].live.name, "blue");
	assert_string_equal(doc->items[0].live.server, "b1");
	assert_string_equal(doc->items[0].idle.name, "green");
	assert_int_equal(doc->items[0].idle.index, 1);
	assert_string_equal(doc->items[0].gateway_runtime_api, "127.0.0.1:9998");
	cn_service_list_free(doc);

	struct cn_service_list *list = NULL;
	assert_int_equal(cn_store_service_list(c->s, &list, &err), 0);
	assert_int_equal(list->n, 1);
	assert_string_equal(list->items[0].idle.name, "green");
	assert_null(list->items[0].source); /* show fields are for show */
	cn_service_list_free(list);

	doc = NULL;
	assert_int_equal(cn_store_service_show(c->s, "nope", &doc, &err), -CN_EINPUT);
	assert_null(doc);
	assert_int_equal(err.code, CN_EINPUT);
	assert_non_null(strstr(err.msg, "no service 'nope'"));
}

static void test_failure_writes_nothing(void **state)
{
	struct store_ctx *c = *state;
	struct cn_service sv;
	struct cn_err err = {0};
	int version = -7;
	bool created = false;
	char *src = load_text(service_v1, &sv);
	/* A name the table's CHECK refuses: the services row fails, nothing at all is written. */
	snprintf(sv.name, sizeof sv.name, "Bad Name");
	assert_int_equal(cn_store_service_apply(c->s, &sv, src, &version, &created, &err), -CN_EINPUT);
	assert_int_equal(version, -7);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM services"), 0);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM service_versions"), 0);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM audit_events"), 0);
	free(src);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_apply_versions, store_ctx_setup, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_failure_writes_nothing, store_ctx_setup, store_ctx_teardown),
	};
	if (!getenv("DATABASE_URL") || !*getenv("DATABASE_URL")) {
		fprintf(stderr, "DATABASE_URL is not set: these integration tests need a Postgres server; start one with "
				"'export DATABASE_URL=$(scripts/pgtmp start)' or run scripts/test\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
