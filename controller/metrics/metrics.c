/* The metrics adapter's entry points: pick the source for a service and dispatch through its function table. */
#include "canary/metrics.h"

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
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

void cn_metrics_set_tag(struct cn_metrics *m, size_t tag)
{
	m->tag = tag;
}

size_t cn_metrics_tag(const struct cn_metrics *m)
{
	return m->tag;
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

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static CURL *pool[CN_CURL_POOL_IDLE];
static int pool_n;
static bool pool_global; /* the pool's own curl_global_init: idle handles outlive every reader's */

CURL *cn_curl_acquire(void)
{
	CURL *c = NULL;

	pthread_mutex_lock(&pool_mu);
	if (!pool_global)
		pool_global = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
	if (pool_n > 0)
		c = pool[--pool_n];
	bool ok = pool_global;
	pthread_mutex_unlock(&pool_mu);
	return c ? c : ok ? curl_easy_init() : NULL;
}

void cn_curl_release(CURL *c)
{
	if (!c)
		return;
	curl_easy_reset(c);
	pthread_mutex_lock(&pool_mu);
	if (pool_n < CN_CURL_POOL_IDLE) {
		pool[pool_n++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&pool_mu);
	if (c)
		curl_easy_cleanup(c);
}

int cn_curl_pool_idle(void)
{
	pthread_mutex_lock(&pool_mu);
	int n = pool_n;
	pthread_mutex_unlock(&pool_mu);
	return n;
}

void cn_curl_pool_drain(void)
{
	pthread_mutex_lock(&pool_mu);
	while (pool_n > 0)
		curl_easy_cleanup(pool[--pool_n]);
	if (pool_global)
		curl_global_cleanup();
	pool_global = false;
	pthread_mutex_unlock(&pool_mu);
}
