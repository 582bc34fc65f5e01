/* The workload profile file (YAML, validated through the same key tables as policies): loading and its key table. */
#ifndef CANARY_PROFILE_H
#define CANARY_PROFILE_H

#include <stddef.h>

#include "canary/err.h"
#include "canary/profile-t.h"
#include "canary/schema.h"

/* Parses profile text; origin names it in messages ("FILE:LINE:COL: ..."). Fills *out only on success.
 * Returns 0 or -CN_EINPUT (-CN_EINTERNAL when out of memory). */
int cn_profile_parse(const char *text, size_t len, const char *origin, struct cn_profile *out, struct cn_err *err);

/* Reads and parses a profile file. Returns as cn_profile_parse, or the file reader's error. */
int cn_profile_load_file(const char *path, struct cn_profile *out, struct cn_err *err);

/* The profile file's top-level schema (static storage), for lint and the README reference. */
const struct cn_schema *cn_profile_schema(void);

/* The endpoint's word as written in a profile ("completions", "chat"); static string. */
const char *cn_profile_endpoint_name(int endpoint);

#endif
