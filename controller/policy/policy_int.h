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

/* Reads a whole document (text, len; ld->origin names it) and walks its root mapping into obj with sc; an empty
 * document fails with `empty` (one line saying what the file needs). 0 or -code with ld->err set. */
int cn_schema_parse(struct cn_load *ld, const char *text, size_t len, const struct cn_schema *sc, const char *what,
		    const char *empty, void *obj);

/* The value node of key `name` among vals (as passed to a schema check), or NULL if absent. */
const struct cn_ynode *cn_schema_val(const struct cn_schema *sc, const struct cn_ynode *const *vals, const char *name);

/* True if a CN_KT_LIMIT value is written as a plain number (no '%', no duration unit). */
bool cn_limit_is_number(const char *text);

/* One webhook of a `notify:` list: its keys (controller/policy/notify_load.c) and its cross-key check. Each loader
 * makes its own list schema around them (the element count's offset differs). */
#define CN_NOTIFY_HOOK_NKEYS 6
extern const struct cn_key cn_notify_hook_keys[CN_NOTIFY_HOOK_NKEYS];
/* A policy's hooks hear its rollouts' events; a service's also its drills' and SLA windows' (FILE:LINE:COL for a
 * service event in a policy). */
int cn_notify_hook_check_policy(struct cn_load *ld, void *obj, const struct cn_ynode *map,
				const struct cn_ynode *const *vals);
int cn_notify_hook_check_service(struct cn_load *ld, void *obj, const struct cn_ynode *map,
				 const struct cn_ynode *const *vals);

/* The service file's contract: section (controller/policy/contract_load.c), over struct cn_contract. */
extern const struct cn_schema cn_contract_schema;

/* An SLA contract's document schema (sla_contract_load.c), also a service's sla: section. */
extern const struct cn_schema cn_sla_contract_doc_schema;

/* The workload profile's document schema (profile_load.c), also a policy's preflight.profile. */
extern const struct cn_schema cn_profile_doc_schema;

/* A policy's preflight: section (preflight_load.c), over struct cn_preflight. */
extern const struct cn_schema cn_preflight_schema;

#endif
