/* Types of a service's inference contract: the response shape its answers must have (OpenAI-compatible fields present
 * and typed) and the tools it may call, each with a JSON Schema subset for the call's arguments (type, required,
 * properties, enum). Filled by the service loader (the `contract:` key), checked by the load generator. Plain data:
 * each schema is kept as the JSON text the loader wrote from the checked YAML. */
#ifndef CANARY_CONTRACT_T_H
#define CANARY_CONTRACT_T_H

#include <stdbool.h>

#define CN_CONTRACT_MAX_TOOLS 4
#define CN_CONTRACT_NAME_MAX 64
#define CN_CONTRACT_SCHEMA_MAX 4096 /* one tool's parameters as JSON text */
#define CN_CONTRACT_MAX_DEPTH 8     /* properties nested in properties */

enum cn_contract_response { CN_RESPONSE_OPENAI = 0, CN_RESPONSE_NONE = 1 };

struct cn_contract_tool {
	char name[CN_CONTRACT_NAME_MAX];
	char parameters[CN_CONTRACT_SCHEMA_MAX]; /* JSON text of the schema subset */
};

struct cn_contract {
	bool declared;                 /* the service file has a contract: key */
	int response;                  /* enum cn_contract_response */
	int ntools;
	struct cn_contract_tool tools[CN_CONTRACT_MAX_TOOLS];
};

#endif
