/* canaryd's log: one JSON object per line on stderr, so log pipelines need no parsing rules; and its clocks. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canary/clock.h"
#include "daemon_int.h"

static int64_t clock_offset_ms; /* CANARY_TEST_CLOCK_OFFSET_MS: set once at start, read-only after */

int clock_init(void)
{
	const char *s = getenv("CANARY_TEST_CLOCK_OFFSET_MS");
	if (!s || !*s)
		return 0;
	char *end = NULL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || !end || *end || v < -INT64_C(31536000000) || v > INT64_C(31536000000)) {
		fprintf(stderr, "canaryd: CANARY_TEST_CLOCK_OFFSET_MS '%s' is not a whole number of milliseconds within "
				"a year (it is for tests; unset it)\n", s);
		return -1;
	}
	clock_offset_ms = v;
	return 0;
}

int64_t now_ms(void)
{
	return cn_wall_ms() + clock_offset_ms;
}

int64_t daemon_now(const struct daemon *d)
{
	return d->db_now_ms + (cn_mono_ms() - d->mono_claim_ms);
}

/* A JSON string of v; bytes that do not form UTF-8 (an error text from a peer) become '?', so the field stays. */
static json_t *jstring(const char *v)
{
	json_t *j = json_string(v);
	if (j)
		return j;
	char *copy = strdup(v);
	if (!copy)
		return NULL;
	for (unsigned char *p = (unsigned char *)copy; *p; p++)
		if (*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

void dlog_fields(const char *level, const char *event, const struct dlog_field *fields)
{
	struct tm tm;
	char stamp[40];
	int64_t ms = now_ms(); /* the daemon's own clock, as its operators would see it */
	time_t sec = (time_t)(ms / 1000);
	gmtime_r(&sec, &tm);
	size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + n, sizeof stamp - n, ".%03dZ", (int)(ms % 1000));

	json_t *o = json_object();
	if (!o)
		return;
	json_object_set_new(o, "ts", json_string(stamp));
	json_object_set_new(o, "level", jstring(level));
	json_object_set_new(o, "event", jstring(event));
	for (const struct dlog_field *f = fields; f->key; f++) {
		switch (f->type) {
		case DLOG_STR:
			if (f->s)
				json_object_set_new(o, f->key, jstring(f->s));
			break;
		case DLOG_INT:
			json_object_set_new(o, f->key, json_integer(f->i));
			break;
		case DLOG_NUM:
			json_object_set_new(o, f->key, json_real(f->f));
			break;
		}
	}
	char *line = json_dumps(o, JSON_COMPACT);
	if (line) {
		fprintf(stderr, "%s\n", line);
		free(line);
	}
	json_decref(o);
}
