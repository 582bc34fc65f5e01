/* The report's view model: the rows the store read, with the audit events in words. The words of all events live in
 * one block the report owns; everything else is borrowed from the rows. */
#include "canary/report.h"

#include <stdlib.h>
#include <string.h>

/* A report and what it owns; the report comes first, so a struct cn_report * is a struct built *. */
struct built {
	struct cn_report report;
	struct cn_report_event *events;
	char *words;
};

struct cn_report *cn_report_build(const struct cn_report_rows *rows, struct cn_err *err)
{
	char line[1024];
	size_t total = 0, used = 0, n = rows->nevents;
	struct built *b = calloc(1, sizeof *b);
	if (!b || (n && !(b->events = calloc(n, sizeof *b->events))))
		goto oom;
	/* two passes (measure, then copy), so the block is exactly as large as the words */
	for (size_t i = 0; i < n; i++) {
		cn_audit_describe(rows->events[i].kind, rows->events[i].data_json, line, sizeof line);
		total += strlen(line) + 1;
	}
	if (total && !(b->words = malloc(total)))
		goto oom;
	for (size_t i = 0; i < n; i++) {
		const struct cn_report_audit_row *ev = &rows->events[i];
		cn_audit_describe(ev->kind, ev->data_json, line, sizeof line);
		size_t len = strlen(line) + 1;
		if (used + len > total) { /* the same words twice: cannot happen */
			cn_fail(err, CN_EINTERNAL, "audit event descriptions changed between two passes");
			cn_report_free(&b->report);
			return NULL;
		}
		memcpy(b->words + used, line, len);
		b->events[i] = (struct cn_report_event){ev->id, ev->at_ms, ev->actor, ev->kind, b->words + used,
							ev->reason, ev->hash};
		used += len;
	}
	b->report = (struct cn_report){
		.rollout = rows->rollout,
		.weights = rows->weights, .nweights = rows->nweights,
		.slos = rows->slos, .nslos = rows->nslos,
		.markers = rows->markers, .nmarkers = rows->nmarkers,
		.events = b->events, .nevents = n,
		.events_total = rows->events_total,
	};
	return &b->report;
oom:
	cn_fail(err, CN_EINTERNAL, "out of memory making the report of rollout %lld", (long long)rows->rollout.id);
	cn_report_free(b ? &b->report : NULL);
	return NULL;
}

void cn_report_free(struct cn_report *r)
{
	struct built *b = (struct built *)r;
	if (!b)
		return;
	free(b->events);
	free(b->words);
	free(b);
}
