/* Assertions on contracts (HAProxy's BUG_ON): a precondition that must never fail, written as code. Kept in release
 * builds: each check is a compare and a branch, and a broken contract must stop the process where it broke, not
 * corrupt state further on. */
#ifndef CANARY_BUG_H
#define CANARY_BUG_H

/* Prints "canary: BUG at FILE:LINE: COND" on stderr and aborts. */
_Noreturn void cn_bug(const char *file, int line, const char *cond);

#define CN_BUG_ON(cond)                                       \
	do {                                                  \
		if (__builtin_expect(!!(cond), 0))            \
			cn_bug(__FILE__, __LINE__, #cond);    \
	} while (0)

#endif
