/* Services in Postgres: one row per service (its live slot), and immutable versions of its file; list, show. */
#include "canary/service.h"
#include "canary/spec_json.h"
#include "canary/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

int cn_store_service_apply(struct cn_store *s, const struct cn_service *sv, const char *source, int *version_out,
			   bool *created_out, struct cn_err *err)
{
	json_t *spec = cn_service_to_json(sv);
	if (!spec)
		return cn_fail(err, CN_EINTERNAL, "cannot encode service '%s' as json", sv->name);
	/* The live slot is set once; later the control loop moves it on promotion. */
	return cn_store_apply_version(s, "apply services",
				      "SELECT version, created FROM canary.apply_service($1, $2, $3, $4::smallint)",
				      sv->name, source, spec, sv->initial_live ? "1" : "0", version_out, created_out, err);
}

/* A slot of the latest version's spec: its name, server, selector and metrics_url. */
#define SLOT(i)                                                                                                   \
	" v.spec->'slots'->(" i ")->>'name', v.spec->'slots'->(" i ")->>'server',"                                \
	" v.spec->'slots'->(" i ")->>'selector', v.spec->'slots'->(" i ")->>'metrics_url'"

/* Columns shared by list and show: the service, its latest version, and its live and idle slots from the spec;
 * then what only show reads. */
#define SERVICE_SQL                                                                                               \
	"SELECT s.name, v.version, v.content_sha256, s.live_slot, s.live_version, " CN_SQL_US("s.created_at") ","  \
	" " CN_SQL_US("s.updated_at") "," SLOT("s.live_slot::int") "," SLOT("1 - s.live_slot::int") ","          \
	" v.created_by, v.spec::text, v.source, v.spec->'gateway'->>'kind', v.spec->'gateway'->>'runtime_api',"  \
	" v.spec->'gateway'->>'backend', v.spec->'metrics'->>'source', v.spec->'metrics'->>'preset'"              \
	" FROM services s JOIN LATERAL (SELECT * FROM service_versions WHERE service = s.name"                    \
	" ORDER BY version DESC LIMIT 1) v ON true"

enum { C_NAME, C_VERSION, C_SHA, C_LIVE_SLOT, C_LIVE_VERSION, C_CREATED, C_UPDATED, C_LIVE, C_IDLE = C_LIVE + 4,
       C_CREATED_BY = C_IDLE + 4, C_SPEC, C_SOURCE, C_GW_KIND, C_GW_API, C_GW_BACKEND, C_M_SOURCE, C_M_PRESET };

static struct cn_slot_info slot_at(const PGresult *r, int row, int col, int index)
{
	return (struct cn_slot_info){index, cn_col_str(r, row, col), cn_col_str(r, row, col + 1),
				     cn_col_str(r, row, col + 2), cn_col_str(r, row, col + 3)};
}

void cn_service_list_free(struct cn_service_list *l)
{
	if (!l)
		return;
	cn_read_free(l->rd);
	free(l);
}

/* One service (name) with the show fields, or all without them. */
static int read_services(struct cn_store *s, const char *name, struct cn_service_list **out, struct cn_err *err)
{
	struct cn_service_list *l = calloc(1, sizeof *l);
	const char *q[1] = {name};
	int rc = 0;
	if (!l || !(l->rd = cn_read_new())) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory reading services");
		goto out;
	}
	PGresult *r = name ? cn_read_query(l->rd, s, "show services", SERVICE_SQL " WHERE s.name = $1", 1, q, err)
			   : cn_read_query(l->rd, s, "list services", SERVICE_SQL " ORDER BY s.name", 0, NULL, err);
	if (!r) {
		rc = -err->code;
		goto out;
	}
	if (name && PQntuples(r) == 0) {
		rc = cn_fail(err, CN_EINPUT, "no service '%s'; see 'canaryctl service list', or apply it with "
			     "'canaryctl service apply FILE'", name);
		goto out;
	}
	l->n = (size_t)PQntuples(r);
	if (!(l->items = cn_read_alloc(l->rd, l->n, sizeof *l->items, err))) {
		rc = -err->code;
		goto out;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		int live = (int)cn_col_int(r, i, C_LIVE_SLOT);
		struct cn_service_info *sv = &l->items[i];
		*sv = (struct cn_service_info){
			.name = cn_col_str(r, i, C_NAME), .version = (int)cn_col_int(r, i, C_VERSION),
			.content_sha256 = cn_col_str(r, i, C_SHA), .live_slot = live,
			.live_version = cn_col_str(r, i, C_LIVE_VERSION), .created_us = cn_col_time(r, i, C_CREATED),
			.updated_us = cn_col_time(r, i, C_UPDATED), .live = slot_at(r, i, C_LIVE, live),
			.idle = slot_at(r, i, C_IDLE, 1 - live),
		};
		if (!name)
			continue;
		sv->created_by = cn_col_str(r, i, C_CREATED_BY);
		sv->spec_json = cn_col_str(r, i, C_SPEC);
		sv->source = cn_col_str(r, i, C_SOURCE);
		sv->gateway_kind = cn_col_str(r, i, C_GW_KIND);
		sv->gateway_runtime_api = cn_col_str(r, i, C_GW_API);
		sv->gateway_backend = cn_col_str(r, i, C_GW_BACKEND);
		sv->metrics_source = cn_col_str(r, i, C_M_SOURCE);
		sv->metrics_preset = cn_col_str(r, i, C_M_PRESET);
	}
	*out = l;
	l = NULL;
out:
	cn_service_list_free(l);
	return rc;
}

int cn_store_service_list(struct cn_store *s, struct cn_service_list **out, struct cn_err *err)
{
	return read_services(s, NULL, out, err);
}

int cn_store_service_show(struct cn_store *s, const char *name, struct cn_service_list **out, struct cn_err *err)
{
	return read_services(s, name, out, err);
}
