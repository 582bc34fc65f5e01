/* Gateway adapter entry points: pick the implementation for the service's gateway kind, then dispatch. */
#include "canary/gateway.h"

#include "gateway-int.h"

struct cn_gateway *cn_gateway_open(const struct cn_service *svc, struct cn_err *err)
{
	if (!svc) {
		cn_fail(err, CN_EINTERNAL, "cn_gateway_open: no service given");
		return NULL;
	}
	switch (svc->gateway.kind) {
	case CN_GATEWAY_HAPROXY:
		return cn_gateway_haproxy_open(svc, err);
	}
	cn_fail(err, CN_EINPUT, "service '%s': unknown gateway kind %d; only haproxy is supported", svc->name,
		(int)svc->gateway.kind);
	return NULL;
}

int cn_gateway_set_weights(struct cn_gateway *gw, const double pct[2], struct cn_err *err)
{
	return gw->ops->set_weights(gw, pct, err);
}

int cn_gateway_get_weights(struct cn_gateway *gw, double pct[2], struct cn_err *err)
{
	return gw->ops->get_weights(gw, pct, err);
}

void cn_gateway_close(struct cn_gateway *gw)
{
	if (gw)
		gw->ops->close(gw);
}
