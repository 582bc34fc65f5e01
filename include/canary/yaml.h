/* The YAML engine the policy and service loaders share: YAML text read into a small tree with 1-based positions
 * (built from libyaml events; anchors, aliases, duplicate keys and several documents refused), lookups in it, and
 * errors that point at a node ("ORIGIN:LINE:COL: message"). Bounded: CN_YAML_MAX_* below. */
#ifndef CANARY_YAML_H
#define CANARY_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include "canary/err.h"

#define CN_YAML_MAX_BYTES (1024 * 1024) /* policy and service files are small; refuse anything bigger */
#define CN_YAML_MAX_NODES 10000
#define CN_YAML_MAX_DEPTH 32

enum cn_ykind { CN_Y_SCALAR, CN_Y_SEQ, CN_Y_MAP };

struct cn_ynode {
	enum cn_ykind kind;
	int line, col;           /* 1-based position of the node's first character */
	bool plain;              /* scalar written without quotes (so "", "~" and "null" mean no value) */
	char *text;              /* scalar: NUL-terminated value */
	size_t len;              /* scalar: length of text (may contain NUL from escapes) */
	struct cn_ynode **kids;  /* sequence: items; mapping: key0, value0, key1, value1 ... */
	size_t n;                /* number of entries in kids */
};

/* A loader's context: where the text came from (for messages) and the error to fill. */
struct cn_load {
	const char *origin;
	struct cn_err *err;
};

/* Checks the text (UTF-8, tab indentation) and parses it into a tree. *root is NULL for an empty document.
 * Returns 0 or -CN_EINPUT with "ORIGIN:LINE:COL: message". The caller frees *root with cn_ynode_free. */
int cn_yaml_read(const char *text, size_t len, const char *origin, struct cn_ynode **root, struct cn_err *err);

/* Frees a tree; accepts NULL. */
void cn_ynode_free(struct cn_ynode *n);

/* True if the node is a scalar meaning "no value": plain empty, "~" or "null". */
bool cn_ynode_is_null(const struct cn_ynode *n);

/* The value node of `key` in mapping node map, or NULL if map is not a mapping or has no such key. */
const struct cn_ynode *cn_ynode_get(const struct cn_ynode *map, const char *key);

/* "a mapping", "a list", "text" ... for messages. */
const char *cn_ynode_kind_desc(const struct cn_ynode *n);

/* Sets ld->err to "ORIGIN:LINE:COL: message" at node `at` (1:1 if NULL); returns -CN_EINPUT. */
int cn_ld_fail(struct cn_load *ld, const struct cn_ynode *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Reads a whole file (at most CN_YAML_MAX_BYTES) into a new NUL-terminated string the caller frees: cn_file_read
 * with the YAML files' cap. */
int cn_read_file(const char *path, char **text, size_t *len, struct cn_err *err);

/* Parses YAML text of `origin` into out (a loader's cn_policy_parse, cn_service_parse). */
typedef int (*cn_yaml_parse_fn)(const char *text, size_t len, const char *origin, void *out, struct cn_err *err);

/* Reads path (cn_read_file) and parses it with parse into out. On success, when source_out is not NULL, *source_out
 * is the file's text (a new string; the caller frees it). Returns 0, or parse's or the read's error. */
int cn_yaml_load_file(const char *path, cn_yaml_parse_fn parse, void *out, char **source_out, struct cn_err *err);

#endif
