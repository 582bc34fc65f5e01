/* Types of the webhooks a policy or a service names (`notify:`): where events go, which ones, how they are signed
 * and shaped. Shared by the loaders, the store (the spec) and canaryd's delivery. */
#ifndef CANARY_NOTIFY_T_H
#define CANARY_NOTIFY_T_H

#include <stdint.h>

#define CN_NOTIFY_MAX_HOOKS 4
#define CN_NOTIFY_URL_MAX 512
#define CN_NOTIFY_SECRET_MAX 128
#define CN_NOTIFY_ENV_MAX 64

/* The events a state change can produce; a hook's `events` is a set of these bits (absent: CN_EVENTS_ALL in a
 * service, CN_EVENTS_ROLLOUT in a policy).
 * The database maps audited changes to these names (canary.notify_event in migrations/0006_outbox.sql). */
enum cn_event {
	CN_EV_STARTED = 1u << 0,           /* rollout started */
	CN_EV_STEP_ADVANCED = 1u << 1,     /* the intended weight went up to the next step */
	CN_EV_AWAITING_APPROVAL = 1u << 2, /* waits for a person */
	CN_EV_PAUSED = 1u << 3,
	CN_EV_RESUMED = 1u << 4,
	CN_EV_PROMOTED = 1u << 5,
	CN_EV_ROLLED_BACK = 1u << 6,
	CN_EV_ABORTED = 1u << 7,
	CN_EV_FAILED = 1u << 8,
	/* a service's own events (no rollout): its `notify:` only (migrations/0016_service_notifications.sql) */
	CN_EV_DRILL_STARTED = 1u << 9,
	CN_EV_DRILL_PASSED = 1u << 10,
	CN_EV_DRILL_CUT_SHORT = 1u << 11,
	CN_EV_DRILL_ABORTED = 1u << 12,
	CN_EV_DRILL_FAILED = 1u << 13,
	CN_EV_SLA_WINDOW_MISSED = 1u << 14,
};
#define CN_EVENTS_ROLLOUT 0x1ffu /* a policy's hooks: its rollouts' events (all of them when `events` is absent) */
#define CN_EVENTS_ALL 0x7fffu    /* a service's hooks: its rollouts', drills' and SLA windows' events */

enum cn_notify_format { CN_NOTIFY_JSON, CN_NOTIFY_SLACK };

struct cn_notify_hook {
	char url[CN_NOTIFY_URL_MAX];            /* http:// or https:// */
	unsigned events;                        /* CN_EV_* bits */
	char secret[CN_NOTIFY_SECRET_MAX];      /* HMAC key as written in the file; "" none */
	char secret_env[CN_NOTIFY_ENV_MAX];     /* or the name of canaryd's environment variable holding it; "" none */
	enum cn_notify_format format;
	int64_t timeout_ms;                     /* one delivery attempt, at most */
};

struct cn_notify {
	struct cn_notify_hook hooks[CN_NOTIFY_MAX_HOOKS];
	int nhooks;
};

#endif
