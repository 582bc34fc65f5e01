/* deploy/k8s/canaryd.yaml checked offline (kubectl's client-side dry run still asks a server for its API list): each
 * document parses, the Deployment runs 2 replicas as the ServiceAccount the RoleBinding binds, the Role grants
 * exactly get and patch on exactly httproutes and inferenceservices in their API groups, and DATABASE_URL comes
 * from a key the Secret has. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/yaml.h"

#define MAX_DOCS 8

static const char *scal(const struct cn_ynode *map, const char *path)
{
	char key[64];
	const struct cn_ynode *n = map;
	while (n && *path) {
		size_t len = strcspn(path, ".");
		snprintf(key, sizeof key, "%.*s", (int)len, path);
		n = cn_ynode_get(n, key);
		path += len + (path[len] == '.');
	}
	return n && n->kind == CN_Y_SCALAR ? n->text : NULL;
}

static const struct cn_ynode *node(const struct cn_ynode *map, const char *path)
{
	char key[64];
	const struct cn_ynode *n = map;
	while (n && *path) {
		size_t len = strcspn(path, ".");
		snprintf(key, sizeof key, "%.*s", (int)len, path);
		n = cn_ynode_get(n, key);
		path += len + (path[len] == '.');
	}
	return n;
}

static void seq_is(const struct cn_ynode *seq, const char *const *want, size_t n)
{
	assert_non_null(seq);
	assert_int_equal(seq->kind, CN_Y_SEQ);
	assert_int_equal(seq->n, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(seq->kids[i]->text, want[i]);
}

static void test_manifest(void **state)
{
	(void)state;
	const char *dir = getenv("CANARY_SOURCE_DIR");
	char path[4096];
	char *text = NULL;
	size_t len = 0;
	struct cn_err err = { 0 };
	struct cn_ynode *docs[MAX_DOCS] = { 0 };
	size_t ndocs = 0;
	snprintf(path, sizeof path, "%s/deploy/k8s/canaryd.yaml", dir ? dir : ".");
	if (cn_read_file(path, &text, &len, &err) < 0)
		fail_msg("%s", err.msg);
	/* split at the document markers (the YAML engine takes one document at a time) */
	char *p = text;
	while (p && *p && ndocs < MAX_DOCS) {
		char *next = strstr(p, "\n---\n");
		if (next)
			next[1] = '\0';
		if (cn_yaml_read(p, strlen(p), path, &docs[ndocs], &err) < 0)
			fail_msg("%s", err.msg);
		if (docs[ndocs])
			ndocs++;
		p = next ? next + 5 : NULL;
	}
	assert_int_equal(ndocs, 5);

	const struct cn_ynode *sa = NULL, *role = NULL, *rb = NULL, *secret = NULL, *dep = NULL;
	for (size_t i = 0; i < ndocs; i++) {
		const char *kind = scal(docs[i], "kind");
		assert_non_null(kind);
		if (!strcmp(kind, "ServiceAccount"))
			sa = docs[i];
		else if (!strcmp(kind, "Role"))
			role = docs[i];
		else if (!strcmp(kind, "RoleBinding"))
			rb = docs[i];
		else if (!strcmp(kind, "Secret"))
			secret = docs[i];
		else if (!strcmp(kind, "Deployment"))
			dep = docs[i];
		else
			fail_msg("unexpected kind %s", kind);
	}
	assert_true(sa && role && rb && secret && dep);

	/* the Role: exactly get and patch, on exactly the two resources */
	const struct cn_ynode *rules = node(role, "rules");
	assert_int_equal(rules->kind, CN_Y_SEQ);
	assert_int_equal(rules->n, 2);
	static const char *const verbs[] = { "get", "patch" };
	static const char *const groups[2][1] = { { "gateway.networking.k8s.io" }, { "serving.kserve.io" } };
	static const char *const res[2][1] = { { "httproutes" }, { "inferenceservices" } };
	for (size_t i = 0; i < 2; i++) {
		seq_is(node(rules->kids[i], "apiGroups"), groups[i], 1);
		seq_is(node(rules->kids[i], "resources"), res[i], 1);
		seq_is(node(rules->kids[i], "verbs"), verbs, 2);
		assert_null(node(rules->kids[i], "resourceNames")); /* any route in the namespace; narrow it if you like */
	}
	assert_string_equal(scal(role, "apiVersion"), "rbac.authorization.k8s.io/v1");

	/* the binding ties the Role to the Deployment's ServiceAccount, in the Role's namespace */
	const char *sa_name = scal(sa, "metadata.name"), *sa_ns = scal(sa, "metadata.namespace");
	assert_string_equal(scal(rb, "metadata.namespace"), scal(role, "metadata.namespace"));
	assert_string_equal(scal(rb, "roleRef.kind"), "Role");
	assert_string_equal(scal(rb, "roleRef.name"), scal(role, "metadata.name"));
	const struct cn_ynode *subj = node(rb, "subjects");
	assert_int_equal(subj->n, 1);
	assert_string_equal(scal(subj->kids[0], "kind"), "ServiceAccount");
	assert_string_equal(scal(subj->kids[0], "name"), sa_name);
	assert_string_equal(scal(subj->kids[0], "namespace"), sa_ns);

	/* the Deployment: 2 replicas, that ServiceAccount, DATABASE_URL from the Secret's key */
	assert_string_equal(scal(dep, "apiVersion"), "apps/v1");
	assert_string_equal(scal(dep, "spec.replicas"), "2");
	assert_string_equal(scal(dep, "metadata.namespace"), sa_ns);
	assert_string_equal(scal(dep, "spec.template.spec.serviceAccountName"), sa_name);
	const struct cn_ynode *ctrs = node(dep, "spec.template.spec.containers");
	assert_int_equal(ctrs->n, 1);
	const struct cn_ynode *env = node(ctrs->kids[0], "env");
	int found = 0;
	for (size_t i = 0; env && i < env->n; i++) {
		if (strcmp(scal(env->kids[i], "name"), "DATABASE_URL") != 0)
			continue;
		found = 1;
		const char *sname = scal(env->kids[i], "valueFrom.secretKeyRef.name");
		const char *skey = scal(env->kids[i], "valueFrom.secretKeyRef.key");
		assert_string_equal(sname, scal(secret, "metadata.name"));
		assert_string_equal(scal(secret, "metadata.namespace"), sa_ns);
		char key[80];
		snprintf(key, sizeof key, "stringData.%s", skey);
		assert_non_null(scal(secret, key));
	}
	assert_true(found);
	/* the labels the selector matches */
	const struct cn_ynode *sel = node(dep, "spec.selector.matchLabels"), *lab = node(dep, "spec.template.metadata.labels");
	assert_true(sel && lab && sel->n >= 2);
	for (size_t i = 0; i + 1 < sel->n; i += 2) {
		const struct cn_ynode *v = cn_ynode_get(lab, sel->kids[i]->text);
		assert_non_null(v);
		assert_string_equal(v->text, sel->kids[i + 1]->text);
	}
	for (size_t i = 0; i < ndocs; i++)
		cn_ynode_free(docs[i]);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_manifest) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
