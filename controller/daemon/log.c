/* canaryd's log: one JSON object per line on stderr, so log pipelines need no parsing rules. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void dlog(const char *level, const char *event, ...)
{
	struct timespec ts;
	struct tm tm;
	char stamp[40];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", ts.tv_nsec / 1000000);

	json_t *o = json_object();
	json_object_set_new(o, "ts", json_string(stamp));
	json_object_set_new(o, "level", json_string(level));
	json_object_set_new(o, "event", json_string(event));
	va_list ap;
	va_start(ap, event);
	for (;;) {
		const char *key = va_arg(ap, const char *);
		if (!key)
			break;
		int type = va_arg(ap, int);
		switch (type) {
		case 's': {
			const char *v = va_arg(ap, const char *);
			if (v)
				json_object_set_new(o, key, json_string(v));
			break;
		}
		case 'I':
			json_object_set_new(o, key, json_integer(va_arg(ap, int64_t)));
			break;
		case 'f':
			json_object_set_new(o, key, json_real(va_arg(ap, double)));
			break;
		default:
			break;
		}
	}
	va_end(ap);
	char *line = json_dumps(o, JSON_COMPACT);
	if (line) {
		fprintf(stderr, "%s\n", line);
		free(line);
	}
	json_decref(o);
}
