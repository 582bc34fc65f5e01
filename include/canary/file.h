/* Reading a whole small file with a cap (policy and service files, migrations), so a huge or endless file (a FIFO,
 * /dev/zero) is refused instead of exhausting memory. */
#ifndef CANARY_FILE_H
#define CANARY_FILE_H

#include <stddef.h>

#include "canary/err.h"

/* Flags for cn_file_read. */
#define CN_FILE_MISSING_OK 1u /* a file that does not exist is not an error: return 1 */

/* Reads the file at path, at most max bytes (max > 0), into a new NUL-terminated string the caller frees; *text and
 * *len (bytes, without the NUL) are written only on success. Returns 0; 1 when the file does not exist and flags has
 * CN_FILE_MISSING_OK; -CN_EINPUT ("PATH: cannot open: ...", "PATH: cannot read: ...", "PATH: file is too large (more
 * than MAX bytes)") or -CN_EINTERNAL (out of memory). */
int cn_file_read(const char *path, size_t max, unsigned flags, char **text, size_t *len, struct cn_err *err);

#endif
