/* The one bounded whole-file reader (canary/file.h), on the capped buffer: the YAML loaders, the migrations
 * and the nginx gateway use it. */
#include "canary/file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "canary/dynbuf.h"

int cn_file_read(const char *path, size_t max, unsigned flags, char **text, size_t *len, struct cn_err *err)
{
	struct cn_dynbuf buf;
	char chunk[8192];
	int rc = 0;
	FILE *f = fopen(path, "rb");
	if (!f && errno == ENOENT && (flags & CN_FILE_MISSING_OK))
		return 1;
	if (!f)
		return cn_fail(err, CN_EINPUT, "%s: cannot open: %s", path, strerror(errno));
	cn_dynbuf_init(&buf, max);
	for (;;) {
		size_t n = fread(chunk, 1, sizeof chunk, f);
		if (n == 0)
			break;
		if ((rc = cn_dynbuf_add(&buf, chunk, n)) == -CN_EINPUT) {
			rc = cn_fail(err, CN_EINPUT, "%s: file is too large (more than %zu bytes)", path, max);
			goto out;
		} else if (rc < 0) {
			rc = cn_fail(err, CN_EINTERNAL, "out of memory reading %s", path);
			goto out;
		}
	}
	if (ferror(f)) {
		rc = cn_fail(err, CN_EINPUT, "%s: cannot read: %s", path, strerror(errno));
		goto out;
	}
	size_t got = 0;
	char *t = cn_dynbuf_take(&buf, &got);
	if (!t) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory reading %s", path);
		goto out;
	}
	*text = t;
	*len = got;
out:
	cn_dynbuf_free(&buf);
	fclose(f);
	return rc;
}
