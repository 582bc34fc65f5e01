/* `canaryctl policy keys` / `service keys`: the file reference in Markdown, generated from the loader's key tables,
 * so the README's reference and the loader cannot disagree (a test compares them). */
#include <stdio.h>
#include <string.h>

#include "canary/schema.h"
#include "cli_int.h"

static void print_range(const struct cn_key *k, char *buf, size_t size)
{
	buf[0] = '\0';
	if (k->type == CN_KT_ENUM && k->enums) {
		size_t used = 0;
		for (const struct cn_enum_val *e = k->enums; e->name && used < size; e++) {
			int n = snprintf(buf + used, size - used, "%s`%s`", e == k->enums ? "" : " \\| ", e->name);
			if (n < 0)
				break;
			used += (size_t)n;
		}
	}
}

/* Writes s with '|' escaped, so it stays inside its Markdown table cell. */
static void cell(const char *s)
{
	char prev = 0;
	for (; s && *s; prev = *s++) {
		if (*s == '|' && prev != '\\')
			fputs("\\|", stdout);
		else
			putchar(*s);
	}
}

static void print_keys(const struct cn_schema *s, const char *prefix)
{
	for (size_t i = 0; i < s->nkeys; i++) {
		const struct cn_key *k = &s->keys[i];
		char path[128], values[256];
		snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", k->name);
		print_range(k, values, sizeof values);
		const char *what = k->type == CN_KT_ENUM ? values
				   : k->type == CN_KT_LIST ? "a list"
				   : k->type == CN_KT_MAP ? "a mapping"
							   : cn_ktype_desc(k->type);
		printf("| `%s` | ", path);
		cell(what);
		printf(" | %s | %s | ", (k->flags & CN_KEY_REQUIRED) ? "yes" : "", k->def ? k->def : "");
		cell(k->doc);
		printf(" |\n");
		if (k->sub) {
			/* a custom key with a schema is a mapping of named entries (slots: NAME: {...}) */
			char sub[140];
			snprintf(sub, sizeof sub, "%s%s", path, k->type == CN_KT_LIST ? "[]" :
				 k->type == CN_KT_CUSTOM ? ".NAME" : "");
			print_keys(k->sub, sub);
		}
	}
}

int cli_print_reference(const struct cn_schema *s)
{
	printf("| key | value | required | default | meaning |\n|---|---|---|---|---|\n");
	print_keys(s, "");
	return 0;
}
