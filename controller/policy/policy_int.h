/* Private to the policy module: the schema walker the policy and service loaders share, on top of the YAML engine
 * (canary/yaml.h). */
#ifndef CANARY_POLICY_INT_H
#define CANARY_POLICY_INT_H

#include "canary/schema.h"
#include "canary/yaml.h"

/* Fills obj from the mapping node following the schema: defaults, keys, types, ranges, required keys, check.
 * `what` names the mapping in messages ("policy", "step 2", "analysis"). */
int cn_schema_walk(struct cn_load *ld, const struct cn_schema *sc, void *obj, const struct cn_ynode *map,
		   const char *what);

/* The value node of key `name` among vals (as passed to a schema check), or NULL if absent. */
const struct cn_ynode *cn_schema_val(const struct cn_schema *sc, const struct cn_ynode *const *vals, const char *name);

#endif
