/* A judged tick's record made at once (cn_store_record_doc) and joined into a batch later
 * (cn_store_record_batch_join) is, byte for byte, the batch cn_store_record_batch_encode makes of the same records:
 * canaryd encodes each tick when it is judged, so a tick waiting for its batch holds 12 kB of text, not 76 kB of
 * row, result and observation. No database: the texts are compared. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "canary/policy.h"
#include "canary/rollout.h"
#include "canary/store_rollouts.h"

#define N 3

static char *source_path(const char *rel)
{
	const char *dir = getenv("CANARY_SOURCE_DIR");
	static char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", rel);
	return path;
}

static void hist(struct cn_histogram *h, double scale)
{
	static const double le[] = { 0.1, 0.5, 1, 2.5, INFINITY };
	h->nbuckets = 5;
	for (int i = 0; i < 5; i++) {
		h->le[i] = le[i];
		h->count[i] = floor(scale * (i + 1) * (i + 2) / 2);
	}
	h->sum = scale * 0.7;
}

static void sample(struct cn_sample *s, double scale)
{
	memset(s, 0, sizeof *s);
	s->ok = true;
	s->requests = 100 * scale;
	s->errors = scale;
	hist(&s->latency, scale);
	hist(&s->ttft, scale / 2);
	s->gen_tokens = s->prompt_tokens = NAN;
	s->cost.per_hour = s->cost.replicas = s->cost.per_1k_tokens = NAN;
}

static int stored_calls;
static void as_stored(const struct cn_rollout_state *st, void *arg)
{
	(void)st;
	(void)arg;
	stored_calls++;
}

static void test_join_is_encode(void **state)
{
	(void)state;
	static struct cn_policy pol;
	static struct cn_rollout_row rows[N];
	static struct cn_tick_result res[N];
	static struct cn_observation obs[N];
	static struct cn_rollout_state cur, scratch;
	struct cn_record recs[N];
	struct cn_err err = { 0 };
	char *src = NULL;
	if (cn_policy_load_file(source_path("policies/default.yaml"), &pol, &src, &err) < 0)
		fail_msg("%s", err.msg);
	free(src);
	for (int i = 0; i < N; i++) {
		rows[i].id = 100 + i;
		rows[i].state_seq = 7 * i;
		rows[i].applied_weight = NAN;
		cn_rollout_init(&cur);
		/* two ticks: the first starts the rollout, the second judges a reading (the last one none) */
		cn_tick(&pol, &cur, NULL, 1700000000000 + i, &res[i]);
		cur = res[i].next;
		obs[i].at_ms = 1700000010000 + i;
		sample(&obs[i].baseline, 10 + i);
		sample(&obs[i].candidate, 1 + i);
		cn_tick(&pol, &cur, i < N - 1 ? &obs[i] : NULL, 1700000010000 + i, &res[i]);
		recs[i] = (struct cn_record){ .row = &rows[i], .policy = &pol, .res = &res[i],
					      .obs = i < N - 1 ? &obs[i] : NULL, .next_tick_ms = 10000, .owner = "d1",
					      .as_stored = as_stored, .as_stored_scratch = &scratch };
	}

	struct cn_record_batch whole, joined;
	assert_int_equal(cn_store_record_batch_encode(recs, N, &whole, &err), 0);
	assert_int_equal(stored_calls, N);
	char *docs[N];
	size_t lens[N];
	int64_t ids[N];
	for (int i = 0; i < N; i++) {
		assert_int_equal(cn_store_record_doc(&recs[i], &docs[i], &lens[i], &err), 0);
		assert_int_equal(strlen(docs[i]), lens[i]);
		assert_true(lens[i] > 1000); /* a whole document: state, status, verdicts */
		ids[i] = rows[i].id;
	}
	assert_int_equal(stored_calls, 2 * N);
	assert_non_null(strstr(docs[0], "\"measurement\""));
	assert_null(strstr(docs[N - 1], "\"measurement\""));
	assert_int_equal(cn_store_record_batch_join(ids, docs, lens, N, "d1", &joined, &err), 0);
	assert_int_equal(joined.n, N);
	assert_string_equal(joined.owner, whole.owner);
	assert_string_equal(joined.id_array, "{100,101,102}");
	assert_string_equal(joined.id_array, whole.id_array);
	assert_string_equal(joined.docs, whole.docs);
	for (int i = 0; i < N; i++)
		assert_true(joined.ids[i] == whole.ids[i]);

	/* one document alone is a batch of one */
	struct cn_record_batch one;
	assert_int_equal(cn_store_record_batch_join(&ids[1], &docs[1], &lens[1], 1, "d1", &one, &err), 0);
	assert_int_equal(strlen(one.docs), lens[1] + 2);
	assert_true(one.docs[0] == '[' && one.docs[lens[1] + 1] == ']');
	assert_memory_equal(one.docs + 1, docs[1], lens[1]);
	assert_string_equal(one.id_array, "{101}");

	cn_record_batch_free(&one);
	cn_record_batch_free(&whole);
	cn_record_batch_free(&joined);
	for (int i = 0; i < N; i++)
		free(docs[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_join_is_encode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
