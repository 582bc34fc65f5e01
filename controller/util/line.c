/* One-line texts in fixed buffers: bounded appends that keep data from breaking the line. */
#include "canary/line.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void cn_line_appendf(char *buf, size_t size, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;
	if (used + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, size - used, fmt, ap);
	va_end(ap);
	for (char *p = buf + used; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
}
