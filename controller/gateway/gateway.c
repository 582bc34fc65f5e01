/* Gateway adapter entry points: pick the implementation for the service's gateway kind, then dispatch. */
#include "canary/gateway.h"

#include "gateway_int.h"
#include "gateway_k8s_int.h"

struct cn_gateway *cn_gateway_open(const struct cn_service *svc, struct cn_err *err)
{
	if (!svc) {
		cn_fail(err, CN_EINTERNAL, "cn_gateway_open: no service given");
		return NULL;
	}
	struct cn_gateway *gw = NULL;
	switch (svc->gateway.kind) {
	case CN_GATEWAY_HAPROXY:
		gw = cn_gateway_haproxy_open(svc, err);
		break;
	case CN_GATEWAY_NGINX:
		gw = cn_gateway_nginx_open(svc, err);
		break;
	case CN_GATEWAY_COMMAND:
		gw = cn_gateway_command_open(svc, err);
		break;
	case CN_GATEWAY_GATEWAY_API:
	case CN_GATEWAY_KSERVE:
		gw = cn_gateway_k8s_open(svc, err);
		break;
	default:
		cn_fail(err, CN_EINPUT, "service '%s': unknown gateway kind %d; use haproxy, nginx, command, gateway-api or kserve",
			svc->name, (int)svc->gateway.kind);
		return NULL;
	}
	if (gw)
		gw->candidate = svc->initial_live == 0 ? 1 : 0;
	return gw;
}

void cn_gateway_set_candidate(struct cn_gateway *gw, int slot)
{
	if (gw && (slot == 0 || slot == 1))
		gw->candidate = slot;
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
