/* The one place a broken contract ends the process (see canary/bug.h). */
#include "canary/bug.h"

#include <stdio.h>
#include <stdlib.h>

_Noreturn void cn_bug(const char *file, int line, const char *cond)
{
	fprintf(stderr, "canary: BUG at %s:%d: %s\n", file, line, cond);
	fflush(stderr);
	abort();
}
