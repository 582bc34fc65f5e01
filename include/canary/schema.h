/* Declarative key tables for policy and service files. The YAML loader walks them; `policy lint` and the README
 * reference can be generated from them: every key, its type, default, range and meaning lives here once. */
#ifndef CANARY_SCHEMA_H
#define CANARY_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

enum cn_ktype {
	CN_KT_STRING,    /* free text into char[size] */
	CN_KT_NAME,      /* identifier into char[size]: letters, digits, '.', '_', '-' */
	CN_KT_URL,       /* http:// or https:// URL into char[size] */
	CN_KT_DURATION,  /* "30s", "1h30m" -> int64_t milliseconds, > 0 */
	CN_KT_DURATION0, /* as CN_KT_DURATION, but 0 is allowed (means "none" / "for ever") */
	CN_KT_PERCENT,   /* "5%" -> double percent */
	CN_KT_FRACTION,  /* "1%" -> double fraction (0.01) */
	CN_KT_RATIO,     /* "1.2x" -> double */
	CN_KT_NUMBER,    /* "0.99" -> double */
	CN_KT_INT,       /* "200" -> int64_t or int, by size */
	CN_KT_BOOL,      /* true/false -> bool */
	CN_KT_ENUM,      /* one of enums[] -> int (or bool, by size) */
	CN_KT_LIMIT,     /* "1%" -> fraction, or "2s" -> seconds (double); the owner's check decides which fits */
	CN_KT_MAP,       /* nested mapping described by sub, stored at offset */
	CN_KT_LIST,      /* sequence of mappings described by sub; see struct cn_schema's list fields */
	CN_KT_CUSTOM,    /* parsed by the key's parse function */
};

/* Range flags: bounds in struct cn_key are inclusive unless marked exclusive. */
#define CN_RANGE_MIN_EXCL 1u
#define CN_RANGE_MAX_EXCL 2u

/* Key flags. */
#define CN_KEY_REQUIRED 1u

struct cn_enum_val {
	const char *name; /* as written in YAML */
	int value;
};

struct cn_load;   /* loader context (canary/yaml.h) */
struct cn_ynode;  /* a YAML node with its position (canary/yaml.h) */
struct cn_schema;

struct cn_key {
	const char *name;
	enum cn_ktype type;
	unsigned flags;               /* CN_KEY_* */
	size_t offset;                /* where the value goes, relative to the object the schema fills */
	size_t size;                  /* storage size: string capacity, or the width of an int/enum field */
	const char *def;              /* default, written as in YAML; NULL: none (doubles become NAN, others 0) */
	double min, max;              /* range in stored units (ms, percent, fraction ...); NAN: unbounded */
	unsigned range;               /* CN_RANGE_* */
	const struct cn_enum_val *enums; /* CN_KT_ENUM: accepted words, NULL-terminated */
	const struct cn_schema *sub;  /* CN_KT_MAP / CN_KT_LIST */
	int (*parse)(struct cn_load *ld, const struct cn_key *key, void *obj, const struct cn_ynode *val);
	const char *doc;              /* one line for lint output and the README */
};

struct cn_schema {
	const char *name;             /* "policy", "step", "slo" ... used in messages */
	const struct cn_key *keys;
	size_t nkeys;
	/* lists only: element size, max elements, and where the element count (int) goes in the parent object */
	size_t item_size;
	size_t max_items;
	size_t count_offset;
	/* cross-key validation after all keys were read; vals[i] is the value node of keys[i] or NULL */
	int (*check)(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals);
};

/* The policy file's top-level schema (static storage). */
const struct cn_schema *cn_policy_schema(void);

/* The service file's top-level schema (static storage). */
const struct cn_schema *cn_service_schema(void);

/* Human description of a key type, e.g. "a duration such as '30s'" (static string). */
const char *cn_ktype_desc(enum cn_ktype t);

#endif
