/* SLA contracts: a YAML file (validated through the same key tables as policies) stating a service's objectives
 * (a latency quantile or availability per window or per month), its price and a credit table. */
#ifndef CANARY_SLA_CONTRACT_H
#define CANARY_SLA_CONTRACT_H

#include <stddef.h>

#include "canary/err.h"
#include "canary/schema.h"
#include "canary/service-t.h"
#include "canary/sla-t.h"

/* Parses contract text; origin names it in messages ("FILE:LINE:COL: ..."). Fills *out only on success. Returns 0 or
 * -CN_EINPUT (-CN_EINTERNAL when out of memory). */
int cn_sla_contract_parse(const char *text, size_t len, const char *origin, struct cn_sla_contract *out, struct cn_err *err);

/* Reads and parses a contract file. If source_out is not NULL, *source_out receives the text (a new string the
 * caller frees). Returns as cn_sla_contract_parse, or the file reader's error. */
int cn_sla_contract_load_file(const char *path, struct cn_sla_contract *out, char **source_out, struct cn_err *err);

/* Checks that every objective of c can be computed from what service sv's metrics configure (ttft needs a ttft
 * histogram, availability an errors counter, latency a latency histogram). Returns 0, or -CN_EINPUT with
 * "FILE:LINE:COL: ..." pointing at the objective's metric. */
int cn_sla_contract_check_service(const struct cn_sla_contract *c, const struct cn_service *sv, struct cn_err *err);

/* The contract file's top-level schema (static storage), for lint and the README reference. */
const struct cn_schema *cn_sla_contract_schema(void);

#endif
