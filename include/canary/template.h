/* Argument templates: "{name}" placeholders replaced by values, "{{" and "}}" for literal braces. The command
 * gateway expands its argv templates with them; the service loader checks templates with the same code. */
#ifndef CANARY_TEMPLATE_H
#define CANARY_TEMPLATE_H

#include <stddef.h>

#include "canary/err.h"

/* A placeholder's name (without braces) and the text it stands for. */
struct cn_tmpl_var {
	const char *name;
	const char *value;
};

/* Expands tmpl into out (NUL-terminated, at most outsz - 1 bytes) with the values of vars. Returns 0; or -CN_EINPUT
 * for an unknown placeholder, an unclosed '{', a lone '}' or an expansion longer than outsz - 1, with *at (if not
 * NULL) set to the byte offset in tmpl where the problem starts and err's message naming it (and the known
 * placeholders). out is undefined on failure. */
int cn_tmpl_expand(const char *tmpl, const struct cn_tmpl_var *vars, size_t nvars, char *out, size_t outsz,
		   size_t *at, struct cn_err *err);

#endif
