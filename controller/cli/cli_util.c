/* Helpers the canaryctl subcommands share: option parsing, error printing, lazy connection, JSON output. */
#include "cli_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canary/parse.h"
#include "canary/store.h"

int cli_usage_error(const char *usage, const char *fmt, ...)
{
	va_list ap;
	fputs("canaryctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (usage)
		fputs(usage, stderr);
	return CN_EUSAGE;
}

int cli_parse(int argc, char **argv, const struct cli_opt *opts, char **pos, int maxpos, int *npos,
	      const char *usage)
{
	int n = 0;
	bool only_pos = false;
	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		if (only_pos || a[0] != '-' || a[1] == '\0') {
			if (n == maxpos)
				return cli_usage_error(usage, "unexpected argument '%s'", a);
			pos[n++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_pos = true;
			continue;
		}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(usage, stdout);
			return 1;
		}
		if (strncmp(a, "--", 2) != 0)
			return cli_usage_error(usage, "unknown option '%s'", a);
		const char *name = a + 2, *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		const struct cli_opt *o = opts;
		while (o && o->name && !(strlen(o->name) == len && strncmp(o->name, name, len) == 0))
			o++;
		if (!o || !o->name)
			return cli_usage_error(usage, "unknown option '--%.*s'", (int)len, name);
		if (o->flag) {
			if (eq)
				return cli_usage_error(usage, "option '--%s' takes no value", o->name);
			*o->flag = true;
		} else if (eq) {
			*o->value = eq + 1;
		} else {
			if (i + 1 >= argc)
				return cli_usage_error(usage, "option '--%s' needs a value", o->name);
			*o->value = argv[++i];
		}
	}
	*npos = n;
	return 0;
}

int cli_parse_int(const char *opt, const char *s, int min, int *out, const char *usage)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (end == s || *end != '\0' || v < min || v > 1000000000)
		return cli_usage_error(usage, "option '--%s' needs a whole number >= %d, not '%s'", opt, min, s);
	*out = (int)v;
	return 0;
}

int cli_error(const struct cn_err *err)
{
	int code = err->code;
	if (code != CN_EUSAGE && code != CN_EINPUT && code != CN_EUNAVAIL && code != CN_EPERM)
		code = CN_EINTERNAL;
	fprintf(stderr, "canaryctl: %s\n", err->msg[0] ? err->msg : "internal error (no message); please report it");
	return code;
}

int cli_store(struct cli *cli, struct cn_store **out)
{
	struct cn_err err = {0};
	if (!cli->store) {
		cli->store = cn_store_connect(cli->db, &err);
		if (!cli->store)
			return cli_error(&err);
	}
	*out = cli->store;
	return 0;
}

int cli_print_json(json_t *doc)
{
	int rc = 0;
	if (!doc || json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
		fputs("canaryctl: cannot write the json output (out of memory or stdout closed)\n", stderr);
		rc = CN_EINTERNAL;
	} else {
		fputc('\n', stdout);
	}
	json_decref(doc);
	return rc;
}

const char *cli_duration(long long ms, char *buf, size_t len)
{
	return cn_format_duration((int64_t)ms, buf, len);
}

int cli_parse_id(const char *s, int64_t *id, const char *usage)
{
	char *end = NULL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!end || end == s || *end || v <= 0 || errno == ERANGE)
		return cli_usage_error(usage, "'%s' is not a rollout id (a positive whole number)", s);
	*id = v;
	return 0;
}

const char *cli_time(int64_t us, enum cli_time_fmt fmt, char *buf, size_t len)
{
	struct tm tm;
	char day[32], frac[16] = "";
	if (us == CN_TIME_NONE) {
		snprintf(buf, len, "-");
		return buf;
	}
	/* floor division: a time before 1970 still has a fraction in [0, 1 s) */
	int64_t sec = us / 1000000, sub = us % 1000000;
	if (sub < 0) {
		sec--;
		sub += 1000000;
	}
	time_t t = (time_t)sec;
	if (!gmtime_r(&t, &tm) || strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	switch (fmt) {
	case CLI_TIME_S:
		snprintf(buf, len, "%sZ", day);
		break;
	case CLI_TIME_MS:
		snprintf(buf, len, "%s.%03dZ", day, (int)(sub / 1000));
		break;
	case CLI_TIME_US_OFFSET:
		if (sub > 0) {
			int n = snprintf(frac, sizeof frac, ".%06d", (int)sub);
			while (n > 1 && frac[n - 1] == '0')
				frac[--n] = '\0';
		}
		snprintf(buf, len, "%s%s+00:00", day, frac);
		break;
	}
	return buf;
}
