/* Building one-line texts (audit lines, descriptions) in fixed buffers. */
#ifndef CANARY_LINE_H
#define CANARY_LINE_H

#include <stddef.h>

/* Appends printf-style text to the NUL-terminated buf of size bytes, cut at the end of buf; control characters in
 * what it appends become spaces, so the text stays one line whatever the data held. */
void cn_line_appendf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
