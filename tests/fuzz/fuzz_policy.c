/* libFuzzer target: the policy and service YAML loaders on arbitrary bytes. Each input either loads or fails with
 * one line "fuzz:LINE:COL: message"; nothing crashes, leaks or reads out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "canary/policy.h"
#include "canary/service.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_err(int rc, const struct cn_err *err)
{
	if (rc == 0)
		return;
	if (rc != -CN_EINPUT || strncmp(err->msg, "fuzz:", 5) != 0 || strchr(err->msg, '\n'))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cn_policy p;
	static struct cn_service sv;
	struct cn_err err = {0};
	check_err(cn_policy_parse((const char *)data, size, "fuzz", &p, &err), &err);
	cn_err_clear(&err);
	check_err(cn_service_parse((const char *)data, size, "fuzz", &sv, &err), &err);
	return 0;
}
