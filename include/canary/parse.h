/* Value parsers for policy and service files: durations, percentages, ratios, numbers, booleans.
 * Pure functions: no allocation, no I/O. Each fills err with what is wrong in words and returns -CN_EINPUT. */
#ifndef CANARY_PARSE_H
#define CANARY_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canary/err.h"

/* Flags for cn_parse_duration_ms. */
#define CN_DURATION_ALLOW_ZERO 1u /* accept "0", "0s" ... (e.g. "no timeout") */

/* Parses a duration made of number+unit groups from largest to smallest unit: "800ms", "30s", "5m", "1h30m".
 * Units: ms, s, m, h, d. Zero is rejected unless CN_DURATION_ALLOW_ZERO (then a bare "0" is accepted too);
 * negative values, missing units and overflow are rejected. On success *out_ms is set and 0 returned. */
int cn_parse_duration_ms(const char *s, unsigned flags, int64_t *out_ms, struct cn_err *err);

/* Parses a percentage "1%", "0.5%", "100%" into percent (1.0, 0.5, 100.0). Must be in [0, 100]. */
int cn_parse_percent(const char *s, double *out_percent, struct cn_err *err);

/* Parses a ratio "1.2x" into 1.2. Must be finite and > 0. */
int cn_parse_ratio(const char *s, double *out, struct cn_err *err);

/* Parses a plain decimal number "0.99", "-3", "12.5" (no exponent, no inf/nan, no hex). */
int cn_parse_number(const char *s, double *out, struct cn_err *err);

/* Parses a plain decimal integer "200", "-1" into an int64 (overflow rejected). */
int cn_parse_int64(const char *s, int64_t *out, struct cn_err *err);

/* Parses a boolean: true/false, yes/no, on/off (lower case). */
int cn_parse_bool(const char *s, bool *out, struct cn_err *err);

/* Formats a duration in the syntax cn_parse_duration_ms accepts ("1h30m", "800ms", "0s") into buf; returns buf. */
char *cn_format_duration(int64_t ms, char *buf, size_t len);

/* Damerau (optimal string alignment) edit distance between a and b, capped at 255. For did-you-mean hints. */
int cn_edit_distance(const char *a, const char *b);

#endif
