/* The metrics adapter's entry points: pick the source for a service and dispatch through its function table. */
#include "canary/metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "metrics_int.h"

struct cn_metrics *cn_metrics_open(const struct cn_service *svc, struct cn_err *err)
{
	return cn_metrics_open_limits(svc, NULL, err);
}

struct cn_metrics *cn_metrics_open_limits(const struct cn_service *svc, const struct cn_metrics_limits *lim,
					  struct cn_err *err)
{
	switch (svc->metrics.source) {
	case CN_SOURCE_SCRAPE:
		return cn_metrics_scrape_open(svc, lim, err);
	case CN_SOURCE_PROMETHEUS:
		return cn_metrics_prom_open(svc, lim, err);
	}
	cn_fail(err, CN_EINPUT, "service '%s': unknown metrics source %d (use scrape or prometheus)", svc->name,
		(int)svc->metrics.source);
	return NULL;
}

int cn_metrics_sample(struct cn_metrics *m, int slot, struct cn_sample *out)
{
	if (!m || !out || slot < 0 || slot > 1 || m->read != CN_READ_IDLE)
		return -CN_EINTERNAL; /* a read driven by a group uses the same connections */
	cn_sample_reset(out);
	return m->ops->sample(m, slot, out);
}

void cn_metrics_close(struct cn_metrics *m)
{
	if (!m)
		return;
	cn_metrics_cancel(m);
	m->ops->close(m);
}

curl_socket_t cn_metrics_open_socket(void *errno_out, curlsocktype purpose, struct curl_sockaddr *a)
{
	(void)purpose;
	curl_socket_t fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	if (fd == CURL_SOCKET_BAD)
		*(int *)errno_out = errno;
	return fd;
}
