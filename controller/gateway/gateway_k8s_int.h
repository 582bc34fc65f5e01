/* Inside the gateway module: a small Kubernetes API client for the gateway-api and kserve adapters: credentials
 * found as client-go finds them (a kubeconfig's context, or the pod's service account), and GET / merge-patch
 * PATCH of one object through libcurl, bounded in time and size. Not a public header. */
#ifndef CANARY_GATEWAY_K8S_INT_H
#define CANARY_GATEWAY_K8S_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canary/err.h"
#include "canary/service-t.h"

#define CN_K8S_BODY_MAX (4 * 1024 * 1024) /* largest API answer read; an HTTPRoute or InferenceService is small */
#define CN_K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* Where the API server is and how to prove who we are. Strings are empty when unset; *_data are decoded PEM. */
struct cn_k8s_auth {
	char server[CN_URL_MAX];      /* https://HOST:PORT (http:// only for loopback tests) */
	char origin[CN_PATH_MAX + 80]; /* "in-cluster" or "KUBECONFIG (context NAME)", for messages */
	char ca_file[CN_PATH_MAX];
	char cert_file[CN_PATH_MAX];
	char key_file[CN_PATH_MAX];
	char token_file[CN_PATH_MAX]; /* read before every request: projected tokens rotate */
	char *token;                  /* a static token, or NULL */
	char *ca_data, *cert_data, *key_data;
	size_t ca_len, cert_len, key_len;
	bool insecure;                /* insecure-skip-tls-verify: true */
	bool in_cluster;              /* the pod's service account, not a kubeconfig */
};

/* Finds the credentials as client-go does: the kubeconfig file `kubeconfig` if not empty; else in-cluster when
 * KUBERNETES_SERVICE_HOST and _PORT are set (token and ca.crt under sa_dir, else $CANARY_K8S_SA_DIR when set (for
 * tests), else CN_K8S_SA_DIR); else the
 * first file of $KUBECONFIG; else ~/.kube/config. `context` picks a context ("" the current one). Fills *a (the
 * caller frees with cn_k8s_auth_free) and returns 0, or -CN_EINPUT (no credentials, a malformed kubeconfig, exec
 * or auth-provider users, which canary does not run) naming the file and key. */
int cn_k8s_auth_load(const char *kubeconfig, const char *context, const char *sa_dir, struct cn_k8s_auth *a,
		     struct cn_err *err);

/* Frees what cn_k8s_auth_load allocated; accepts a zeroed struct. */
void cn_k8s_auth_free(struct cn_k8s_auth *a);

struct cn_k8s;
struct cn_gateway;

/* A client for the API server in auth (moved into the client: *auth is zeroed) whose every request is bounded by
 * timeout_ms. Returns a new client (cn_k8s_close frees it) or NULL with err set. */
struct cn_k8s *cn_k8s_open(struct cn_k8s_auth *auth, int64_t timeout_ms, struct cn_err *err);

/* Closes c; accepts NULL. */
void cn_k8s_close(struct cn_k8s *c);

/* Sends GET (body NULL) or PATCH (body: a JSON merge patch) of path (/apis/...). On an answer, returns 0 with the
 * HTTP status in *code and the parsed JSON body in *out (NULL if the body is not JSON; the caller decrefs).
 * Returns -CN_EUNAVAIL when there was no answer in time (cannot connect, TLS, timeout, reset, an answer larger
 * than CN_K8S_BODY_MAX), with curl's words. */
int cn_k8s_request(struct cn_k8s *c, const char *method, const char *path, const char *body, long *code,
		   json_t **out, struct cn_err *err);

/* The words of an error answer: a v1 Status's message (and reason), else "HTTP CODE". Writes into buf; returns
 * buf. */
const char *cn_k8s_status_words(long code, const json_t *body, char *buf, size_t size);

/* Opens a gateway-api or kserve client for svc (gateway_k8s.c); returns a new client or NULL with err set
 * (-CN_EINPUT when no credentials are found). Does not connect yet. */
struct cn_gateway *cn_gateway_k8s_open(const struct cn_service *svc, struct cn_err *err);

/* What to do when the API server answered 401 ("; the token of ... was refused: ..."), naming where the refused
 * credentials came from. Writes into buf; returns buf. */
const char *cn_k8s_auth_hint(const struct cn_k8s *c, char *buf, size_t size);

/* The API server's base URL, for messages. */
const char *cn_k8s_server(const struct cn_k8s *c);

#endif
