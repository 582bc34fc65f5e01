/* Inference-contract checks (controller/load/contract.c): every answer of a pre-flight is checked against the
 * service's declared contract (canary/contract-t.h): the OpenAI-compatible response shape, and each tool call's
 * arguments against its tool's JSON Schema subset (type, required, properties, enum). Bounded: jansson refuses JSON
 * nested deeper than 2,048 levels, and the validator only descends as deep as the schema (at most
 * CN_CONTRACT_MAX_DEPTH), so hostile answers cost time linear in their size. */
#ifndef CANARY_CONTRACT_H
#define CANARY_CONTRACT_H

#include <stdbool.h>
#include <stddef.h>

#include "canary/contract-t.h"
#include "canary/err.h"

#define CN_CONTRACT_WHY_MAX 200

/* A contract ready to check answers with (the schemas parsed once). */
struct cn_contract_rt;

/* Compiles c for `endpoint` (enum cn_profile_endpoint). Returns a new object (the caller frees it with
 * cn_contract_rt_free) or NULL with err (-CN_EINPUT: a schema that is not JSON). */
struct cn_contract_rt *cn_contract_compile(const struct cn_contract *c, int endpoint, struct cn_err *err);
void cn_contract_rt_free(struct cn_contract_rt *rt);

/* The chat requests' "tools" array as JSON text, or NULL when the contract has no tools (borrowed from rt). */
const char *cn_contract_tools_json(const struct cn_contract_rt *rt);

/* Validates the JSON text value against the schema subset in the JSON text schema. Returns true when it fits;
 * false with why ("$.unit: 'kelvin' is not one of the enum's values") when it does not or is not JSON. */
bool cn_contract_validate_text(const char *schema, const char *value, size_t len, char *why, size_t whylen);

/* Checks a whole (non-streamed) answer body. Returns true when it conforms, else false with why. */
bool cn_contract_check_answer(const struct cn_contract_rt *rt, const char *body, size_t len, char *why,
			      size_t whylen);

/* A streamed answer: each event's data is checked as a chunk, the tool calls' pieces are put together, and the
 * whole is judged at the end. */
struct cn_contract_stream {
	void *calls;     /* the tool calls assembled so far (a jansson array), NULL before the first */
	bool bad;        /* a violation was found; why says the first */
	char why[CN_CONTRACT_WHY_MAX];
};

void cn_contract_stream_init(struct cn_contract_stream *s);

/* One `data:` payload (not [DONE]). Records the first violation in s. */
void cn_contract_stream_chunk(const struct cn_contract_rt *rt, struct cn_contract_stream *s, const char *data,
			      size_t len);

/* After [DONE]: validates the assembled tool calls. Returns true when the whole stream conforms, else false with
 * s->why. */
bool cn_contract_stream_end(const struct cn_contract_rt *rt, struct cn_contract_stream *s);

void cn_contract_stream_free(struct cn_contract_stream *s);

#endif
