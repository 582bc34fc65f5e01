/* Error objects: filled by library code, printed only by the shells. */
#include "canary/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int cn_fail(struct cn_err *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		err->code = code;
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
		/* one line, always */
		for (char *p = err->msg; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
	}
	return -code;
}

int cn_err_prefix(struct cn_err *err, const char *fmt, ...)
{
	if (!err)
		return -CN_EINTERNAL;
	char prefix[256];
	char old[CN_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof old);
	snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
	return -err->code;
}

void cn_err_clear(struct cn_err *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}
