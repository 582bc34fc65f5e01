/* libFuzzer target: the Prometheus text parser on arbitrary pages, fed in two chunks split at a data-chosen point.
 * Any crash, sanitizer report or leak is a bug; the parser must answer ok or a reason, never more. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "canary/promtext.h"
#include "canary/service.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cn_promtext *p;
	if (!p) {
		struct cn_metric_names names;
		struct cn_err err = {0};
		cn_metric_names_preset(CN_PRESET_VLLM, &names);
		struct cn_promtext_limits lim = {.max_line = 4096, .max_page = 1 << 20};
		p = cn_promtext_new(&names, &lim, &err);
		if (!p)
			abort();
	}
	struct cn_sample s;
	size_t cut = size ? data[0] % (size + 1) : 0;
	cn_promtext_begin(p, "fuzz");
	cn_promtext_feed(p, (const char *)data, cut);
	cn_promtext_feed(p, (const char *)data + cut, size - cut);
	cn_promtext_end(p, &s);
	if (!s.ok && s.why[0] == '\0')
		abort(); /* a failure must say why */
	for (int i = 1; s.ok && i < s.latency.nbuckets; i++)
		if (!(s.latency.le[i] > s.latency.le[i - 1]))
			abort(); /* bucket bounds must come out ascending */
	return 0;
}
