/* A small Kubernetes API client for the gateway-api and kserve adapters: credentials as client-go finds them
 * (kubeconfig context or in-cluster service account), and one GET or merge-patch PATCH per call through libcurl,
 * bounded in time (gateway.timeout) and size (CN_K8S_BODY_MAX). */
#include "gateway_k8s_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/dynbuf.h"
#include "canary/yaml.h"

#define TOKEN_MAX 16384 /* a service-account JWT is about 1 KiB */

struct cn_k8s {
	CURL *curl;
	struct cn_k8s_auth auth;
	int64_t timeout_ms;
	char errbuf[CURL_ERROR_SIZE];
};

void cn_k8s_auth_free(struct cn_k8s_auth *a)
{
	if (!a)
		return;
	free(a->token);
	free(a->ca_data);
	free(a->cert_data);
	free(a->key_data);
	a->token = a->ca_data = a->cert_data = a->key_data = NULL;
}

/* Decodes standard base64 (whitespace ignored) into a new buffer; returns it (the caller frees) or NULL. */
static char *b64_decode(const char *s, size_t *len)
{
	size_t n = strlen(s), o = 0;
	char *out = malloc(n / 4 * 3 + 4);
	unsigned v = 0;
	int bits = 0;
	if (!out)
		return NULL;
	for (const char *p = s; *p; p++) {
		int d;
		char ch = *p;
		if (ch >= 'A' && ch <= 'Z')
			d = ch - 'A';
		else if (ch >= 'a' && ch <= 'z')
			d = ch - 'a' + 26;
		else if (ch >= '0' && ch <= '9')
			d = ch - '0' + 52;
		else if (ch == '+')
			d = 62;
		else if (ch == '/')
			d = 63;
		else if (ch == '=' || ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
			continue;
		else {
			free(out);
			return NULL;
		}
		v = (v << 6) | (unsigned)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((v >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	*len = o;
	return out;
}

/* A scalar value of map[key], or NULL. */
static const char *yscalar(const struct cn_ynode *map, const char *key)
{
	const struct cn_ynode *v = cn_ynode_get(map, key);
	return v && v->kind == CN_Y_SCALAR && !cn_ynode_is_null(v) ? v->text : NULL;
}

/* The entry of a kubeconfig list (clusters, users, contexts) named name; returns its inner map (under `inner`). */
static const struct cn_ynode *named(const struct cn_ynode *root, const char *list, const char *name,
				    const char *inner)
{
	const struct cn_ynode *l = cn_ynode_get(root, list);
	if (!l || l->kind != CN_Y_SEQ)
		return NULL;
	for (size_t i = 0; i < l->n; i++) {
		const char *n = yscalar(l->kids[i], "name");
		if (n && strcmp(n, name) == 0)
			return cn_ynode_get(l->kids[i], inner);
	}
	return NULL;
}

/* A file path from a kubeconfig: relative paths are relative to the kubeconfig's directory (as client-go does). */
static int kc_path(const char *kc, const char *p, char *out, size_t size, struct cn_err *err)
{
	int n;
	if (p[0] == '/') {
		n = snprintf(out, size, "%s", p);
	} else {
		const char *slash = strrchr(kc, '/');
		n = slash ? snprintf(out, size, "%.*s/%s", (int)(slash - kc), kc, p) : snprintf(out, size, "%s", p);
	}
	if (n < 0 || (size_t)n >= size)
		return cn_fail(err, CN_EINPUT, "%s: path '%s' is too long", kc, p);
	return 0;
}

static int kc_data(const char *kc, const char *key, const char *text, char **out, size_t *len, struct cn_err *err)
{
	if (!(*out = b64_decode(text, len)))
		return cn_fail(err, CN_EINPUT, "%s: %s is not base64", kc, key);
	return 0;
}

static int load_kubeconfig(const char *kc, const char *context, struct cn_k8s_auth *a, struct cn_err *err)
{
	char *text = NULL;
	size_t len = 0;
	struct cn_ynode *root = NULL;
	int rc;
	const char *s;

	if ((rc = cn_read_file(kc, &text, &len, err)) < 0)
		goto out;
	if ((rc = cn_yaml_read(text, len, kc, &root, err)) < 0)
		goto out;
	const char *ctx_name = context && context[0] ? context : yscalar(root, "current-context");
	if (!ctx_name) {
		rc = cn_fail(err, CN_EINPUT, "%s: no current-context; set one (kubectl config use-context) or gateway.context",
			     kc);
		goto out;
	}
	const struct cn_ynode *ctx = named(root, "contexts", ctx_name, "context");
	if (!ctx) {
		rc = cn_fail(err, CN_EINPUT, "%s: no context named '%s'", kc, ctx_name);
		goto out;
	}
	const char *cl_name = yscalar(ctx, "cluster"), *user_name = yscalar(ctx, "user");
	const struct cn_ynode *cl = cl_name ? named(root, "clusters", cl_name, "cluster") : NULL;
	if (!cl_name || !cl) {
		const struct cn_ynode *at = cl_name ? cn_ynode_get(ctx, "cluster") : ctx;
		rc = cn_fail(err, CN_EINPUT, "%s:%d:%d: context '%s' %s%s%s; add it to clusters or pick another context "
			     "(gateway.context)", kc, at->line, at->col, ctx_name, cl_name ? "names cluster '" : "names no cluster",
			     cl_name ? cl_name : "", cl_name ? "', which is not in clusters" : "");
		goto out;
	}
	if (!(s = yscalar(cl, "server"))) {
		rc = cn_fail(err, CN_EINPUT, "%s:%d:%d: cluster '%s' has no server; give it the API server's https:// URL",
			     kc, cl->line, cl->col, cl_name);
		goto out;
	}
	if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0) {
		rc = cn_fail(err, CN_EINPUT, "%s: cluster '%s': server '%s' is not an https:// URL", kc, cl_name, s);
		goto out;
	}
	snprintf(a->server, sizeof a->server, "%s", s);
	len = strlen(a->server);
	while (len > 0 && a->server[len - 1] == '/')
		a->server[--len] = '\0';
	snprintf(a->origin, sizeof a->origin, "%s (context %s)", kc, ctx_name);
	if ((s = yscalar(cl, "certificate-authority-data")) &&
	    (rc = kc_data(kc, "certificate-authority-data", s, &a->ca_data, &a->ca_len, err)) < 0)
		goto out;
	if ((s = yscalar(cl, "certificate-authority")) && (rc = kc_path(kc, s, a->ca_file, sizeof a->ca_file, err)) < 0)
		goto out;
	a->insecure = (s = yscalar(cl, "insecure-skip-tls-verify")) && strcmp(s, "true") == 0;

	const struct cn_ynode *user = user_name ? named(root, "users", user_name, "user") : NULL;
	if (user_name && !user) {
		const struct cn_ynode *at = cn_ynode_get(ctx, "user");
		rc = cn_fail(err, CN_EINPUT, "%s:%d:%d: context '%s' names user '%s', which is not in users; add it or "
			     "pick another context (gateway.context)", kc, at->line, at->col, ctx_name, user_name);
		goto out;
	}
	if (user) {
		if (cn_ynode_get(user, "exec") || cn_ynode_get(user, "auth-provider")) {
			rc = cn_fail(err, CN_EINPUT, "%s: user '%s' gets its credentials from a program (exec or "
				     "auth-provider), which canary does not run; give it a token or a client certificate",
				     kc, user_name);
			goto out;
		}
		if ((s = yscalar(user, "token")) && !(a->token = strdup(s))) {
			rc = cn_fail(err, CN_EINTERNAL, "out of memory");
			goto out;
		}
		if ((s = yscalar(user, "tokenFile")) &&
		    (rc = kc_path(kc, s, a->token_file, sizeof a->token_file, err)) < 0)
			goto out;
		if ((s = yscalar(user, "client-certificate")) &&
		    (rc = kc_path(kc, s, a->cert_file, sizeof a->cert_file, err)) < 0)
			goto out;
		if ((s = yscalar(user, "client-key")) && (rc = kc_path(kc, s, a->key_file, sizeof a->key_file, err)) < 0)
			goto out;
		if ((s = yscalar(user, "client-certificate-data")) &&
		    (rc = kc_data(kc, "client-certificate-data", s, &a->cert_data, &a->cert_len, err)) < 0)
			goto out;
		if ((s = yscalar(user, "client-key-data")) &&
		    (rc = kc_data(kc, "client-key-data", s, &a->key_data, &a->key_len, err)) < 0)
			goto out;
	}
	rc = 0;
out:
	cn_ynode_free(root);
	free(text);
	return rc;
}

int cn_k8s_auth_load(const char *kubeconfig, const char *context, const char *sa_dir, struct cn_k8s_auth *a,
		     struct cn_err *err)
{
	struct cn_k8s_auth tmp = { 0 };
	char kc[CN_PATH_MAX];
	const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
	int rc;

	if (kubeconfig && kubeconfig[0]) {
		snprintf(kc, sizeof kc, "%s", kubeconfig);
	} else if (host && host[0] && port && port[0]) {
		const char *env_dir = getenv("CANARY_K8S_SA_DIR"); /* tests lay out a service account elsewhere */
		const char *dir = sa_dir && sa_dir[0] ? sa_dir : env_dir && env_dir[0] ? env_dir : CN_K8S_SA_DIR;
		int n = snprintf(tmp.server, sizeof tmp.server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
				 host, port);
		if (n < 0 || (size_t)n >= sizeof tmp.server)
			return cn_fail(err, CN_EINPUT, "KUBERNETES_SERVICE_HOST '%s' is too long", host);
		snprintf(tmp.token_file, sizeof tmp.token_file, "%s/token", dir);
		snprintf(tmp.ca_file, sizeof tmp.ca_file, "%s/ca.crt", dir);
		snprintf(tmp.origin, sizeof tmp.origin, "the service account in %s", dir);
		tmp.in_cluster = true;
		*a = tmp;
		return 0;
	} else {
		const char *env = getenv("KUBECONFIG"), *home = getenv("HOME");
		if (env && env[0])
			snprintf(kc, sizeof kc, "%.*s", (int)strcspn(env, ":"), env);
		else if (home && home[0])
			snprintf(kc, sizeof kc, "%s/.kube/config", home);
		else
			return cn_fail(err, CN_EINPUT, "no Kubernetes credentials: not in a cluster (KUBERNETES_SERVICE_HOST "
				       "unset), no gateway.kubeconfig, no KUBECONFIG and no HOME");
	}
	if ((rc = load_kubeconfig(kc, context, &tmp, err)) < 0) {
		cn_k8s_auth_free(&tmp);
		return rc;
	}
	*a = tmp;
	return 0;
}

struct cn_k8s *cn_k8s_open(struct cn_k8s_auth *auth, int64_t timeout_ms, struct cn_err *err)
{
	struct cn_k8s *c = calloc(1, sizeof *c);
	if (!c) {
		cn_fail(err, CN_EINTERNAL, "out of memory");
		return NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(c->curl = curl_easy_init())) {
		free(c);
		cn_fail(err, CN_EINTERNAL, "cannot initialise libcurl");
		return NULL;
	}
	c->auth = *auth;
	memset(auth, 0, sizeof *auth);
	c->timeout_ms = timeout_ms;
	return c;
}

void cn_k8s_close(struct cn_k8s *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->curl);
	cn_k8s_auth_free(&c->auth);
	free(c);
}

const char *cn_k8s_server(const struct cn_k8s *c)
{
	return c->auth.server;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct cn_dynbuf *b = ud;
	return cn_dynbuf_add(b, ptr, size * nmemb) == 0 ? size * nmemb : 0;
}

/* The bearer token: the static one, or the token file's content (trimmed). Returns 0 (tok "" when none). */
static int read_token(const struct cn_k8s_auth *a, char *tok, size_t size, struct cn_err *err)
{
	tok[0] = '\0';
	if (a->token) {
		snprintf(tok, size, "%s", a->token);
		return 0;
	}
	if (!a->token_file[0])
		return 0;
	FILE *f = fopen(a->token_file, "r");
	if (!f)
		return cn_fail(err, CN_EUNAVAIL, "cannot read the service account token %s: %s; mount it "
			       "(automountServiceAccountToken) or give gateway.kubeconfig", a->token_file, strerror(errno));
	size_t n = fread(tok, 1, size - 1, f);
	fclose(f);
	tok[n] = '\0';
	while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
		tok[--n] = '\0';
	return 0;
}

/* What to do about a TLS failure, for the one-line error: where the CA or client certificate came from. */
static const char *tls_hint(const struct cn_k8s_auth *a, CURLcode cc)
{
	bool has_cert = a->cert_file[0] || a->cert_data;
	switch (cc) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		if (a->in_cluster)
			return "; the API server's certificate is not signed by the service account's ca.crt: check that "
			       "KUBERNETES_SERVICE_HOST/_PORT name this cluster's API server";
		return "; the API server's certificate is not signed by the kubeconfig's certificate-authority(-data): "
		       "check that the context's cluster is this server, or fetch its CA again";
	case CURLE_SSL_CERTPROBLEM:
		return "; the client certificate or key (client-certificate/client-key(-data)) cannot be used: check "
		       "that they are PEM and belong together";
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		/* a refused client certificate reads as an alert or as a reset, depending on who is first */
		if (a->server[4] != 's')
			return "";
		return has_cert ? "; if the API server refused the client certificate, check that the cluster's CA "
				  "signed it and that it has not expired"
				: "; if the API server asks for a client certificate, give the user client-certificate and "
				  "client-key";
	default:
		return "";
	}
}

const char *cn_k8s_auth_hint(const struct cn_k8s *c, char *buf, size_t size)
{
	if (c->auth.in_cluster)
		snprintf(buf, size, "; the token of %s was refused: it may have expired (projected tokens rotate: "
			 "check the pod's token mount) or belong to another cluster", c->auth.origin);
	else
		snprintf(buf, size, "; the credentials of %s were refused: renew the user's token or client certificate",
			 c->auth.origin);
	return buf;
}

int cn_k8s_request(struct cn_k8s *c, const char *method, const char *path, const char *body, long *code,
		   json_t **out, struct cn_err *err)
{
	struct cn_dynbuf buf;
	struct curl_slist *hdrs = NULL;
	char url[CN_URL_MAX + 512], *tok = NULL, *auth = NULL;
	int rc;
	CURL *h = c->curl;

	cn_dynbuf_init(&buf, CN_K8S_BODY_MAX);
	if (snprintf(url, sizeof url, "%s%s", c->auth.server, path) >= (int)sizeof url) {
		rc = cn_fail(err, CN_EINTERNAL, "request path too long: %s", path);
		goto out;
	}
	if (!(tok = malloc(TOKEN_MAX)) || !(auth = malloc(TOKEN_MAX + 32))) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory");
		goto out;
	}
	if ((rc = read_token(&c->auth, tok, TOKEN_MAX, err)) < 0)
		goto out;
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (body)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/merge-patch+json");
	if (tok[0]) {
		snprintf(auth, TOKEN_MAX + 32, "Authorization: Bearer %s", tok);
		hdrs = curl_slist_append(hdrs, auth);
	}
	if (!hdrs) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory");
		goto out;
	}
	curl_easy_reset(h);
	c->errbuf[0] = '\0';
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_ms);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "canaryd");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &buf);
	if (body) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	if (c->auth.ca_file[0])
		curl_easy_setopt(h, CURLOPT_CAINFO, c->auth.ca_file);
	if (c->auth.ca_data) {
		struct curl_blob blob = { .data = c->auth.ca_data, .len = c->auth.ca_len, .flags = CURL_BLOB_COPY };
		curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
	}
	if (c->auth.cert_file[0])
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->auth.cert_file);
	if (c->auth.key_file[0])
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->auth.key_file);
	if (c->auth.cert_data) {
		struct curl_blob blob = { .data = c->auth.cert_data, .len = c->auth.cert_len, .flags = CURL_BLOB_COPY };
		curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &blob);
	}
	if (c->auth.key_data) {
		struct curl_blob blob = { .data = c->auth.key_data, .len = c->auth.key_len, .flags = CURL_BLOB_COPY };
		curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &blob);
	}
	if (c->auth.insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	CURLcode cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		if (cc == CURLE_WRITE_ERROR && cn_dynbuf_error(&buf))
			rc = cn_fail(err, CN_EUNAVAIL, "%s %s: the answer is longer than %d bytes", method, url,
				     CN_K8S_BODY_MAX);
		else {
			const char *words = c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc);
			rc = cn_fail(err, CN_EUNAVAIL, "%s %s: %s%s", method, url, words, tls_hint(&c->auth, cc));
		}
		goto out;
	}
	long http = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
	json_t *doc = json_loadb(cn_dynbuf_ptr(&buf), cn_dynbuf_len(&buf), 0, NULL);
	*code = http;
	*out = doc;
	rc = 0;
out:
	curl_slist_free_all(hdrs);
	if (tok)
		memset(tok, 0, TOKEN_MAX);
	if (auth)
		memset(auth, 0, TOKEN_MAX + 32);
	free(tok);
	free(auth);
	cn_dynbuf_free(&buf);
	return rc;
}

const char *cn_k8s_status_words(long code, const json_t *body, char *buf, size_t size)
{
	const char *msg = json_string_value(json_object_get(body, "message"));
	const char *reason = json_string_value(json_object_get(body, "reason"));
	if (msg && msg[0])
		snprintf(buf, size, "%ld %s: %s", code, reason ? reason : "", msg);
	else
		snprintf(buf, size, "HTTP %ld", code);
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < ' ')
			*p = ' ';
	return buf;
}
