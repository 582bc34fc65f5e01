/* What `policy` and `service` share: both are versioned YAML documents that canaryctl lints without a database,
 * applies as a new immutable version when the content changed, and documents from the loader's key table. One
 * implementation, driven by a struct cli_doc that says how to load, describe and store each kind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/store.h"
#include "cli_int.h"

int cli_doc_lint(struct cli *cli, const struct cli_doc *doc, int argc, char **argv)
{
	char *files[256];
	const char *with = NULL;
	const struct cli_opt opts[] = { { "service", &with, NULL }, { NULL, NULL, NULL } };
	int n, rc, bad = 0;
	rc = cli_parse(argc, argv, doc->pair ? opts : NULL, files, 256, &n, doc->usage);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (n == 0)
		return cli_usage_error(doc->usage, "%s lint needs at least one FILE", doc->kind);
	json_t *out = json_array();
	for (int i = 0; i < n; i++) {
		void *obj = calloc(1, doc->size);
		struct cn_err err = {0};
		if (!obj) {
			json_decref(out);
			fputs("canaryctl: out of memory\n", stderr);
			return CN_EINTERNAL;
		}
		char *source = NULL;
		if (doc->load(files[i], obj, &source, &err) != 0 ||
		    (with && doc->pair(obj, source, files[i], with, &err) != 0)) {
			int code = cli_error(&err);
			if (!bad)
				bad = code;
			json_array_append_new(out, cli_json_lint(files[i], err.msg, NULL, NULL));
		} else {
			char what[256];
			doc->describe(obj, what, sizeof what);
			if (cli->output == CLI_TEXT)
				printf("%s: ok (%s)\n", files[i], what);
			json_array_append_new(out, cli_json_lint(files[i], NULL, doc->name(obj), doc->to_json(obj)));
		}
		free(source);
		free(obj);
	}
	if (cli->output == CLI_JSON) {
		rc = cli_print_json(out);
		out = NULL;
		if (rc)
			return rc;
	}
	json_decref(out);
	return bad;
}

int cli_doc_apply(struct cli *cli, const struct cli_doc *doc, int argc, char **argv)
{
	char *files[1];
	char *source = NULL;
	struct cn_err err = {0};
	struct cn_store *store;
	int n, rc, version;
	bool created;

	rc = cli_parse(argc, argv, NULL, files, 1, &n, doc->usage);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (n != 1)
		return cli_usage_error(doc->usage, "%s apply needs one FILE", doc->kind);
	void *obj = calloc(1, doc->size);
	if (!obj) {
		fputs("canaryctl: out of memory\n", stderr);
		return CN_EINTERNAL;
	}
	/* Validate before connecting: a bad file is reported (65) even without a database. */
	if (doc->load(files[0], obj, &source, &err) != 0) {
		rc = cli_error(&err);
		goto out;
	}
	rc = cli_store(cli, &store);
	if (rc)
		goto out;
	if (doc->apply(store, obj, source, &version, &created, &err) != 0) {
		rc = cli_error(&err);
		goto out;
	}
	struct cn_err perr = {0};
	bool unreachable = doc->probe && doc->probe(obj, &perr) != 0;
	if (unreachable)
		fprintf(stderr, "canaryctl: warning: %s '%s' is stored, but %s; rollouts hold until canaryd reaches it\n",
			doc->kind, doc->name(obj), perr.msg);
	if (cli->output == CLI_JSON)
		rc = cli_print_json(cli_json_applied(doc->name(obj), version, created, files[0],
						     unreachable ? perr.msg : NULL));
	else if (created)
		printf("%s '%s' version %d stored\n", doc->kind, doc->name(obj), version);
	else
		printf("%s '%s' unchanged: version %d has this content\n", doc->kind, doc->name(obj), version);
out:
	free(source);
	free(obj);
	return rc;
}

int cli_doc_keys(struct cli *cli, const struct cli_doc *doc, int argc, char **argv)
{
	(void)cli;
	(void)argv;
	if (argc > 1)
		return cli_usage_error(doc->usage, "%s keys takes no arguments", doc->kind);
	return cli_print_reference(doc->schema());
}

int cli_doc_list(struct cli *cli, const struct cli_doc *doc, int argc, char **argv)
{
	struct cn_err err = {0};
	struct cn_store *store;
	void *list = NULL;
	int n, rc;
	rc = cli_parse(argc, argv, NULL, NULL, 0, &n, doc->usage);
	if (rc)
		return rc == 1 ? 0 : rc;
	if ((rc = cli_store(cli, &store)) != 0)
		return rc;
	if (doc->read_list(store, &list, &err) < 0)
		return cli_error(&err);
	if (cli->output == CLI_JSON)
		rc = cli_print_json(doc->list_json(list));
	else
		doc->print_list(list);
	doc->free_list(list);
	return rc;
}

int cli_doc_show(struct cli *cli, const struct cli_doc *doc, int argc, char **argv)
{
	char *pos[1];
	const char *vers = NULL;
	bool source = false;
	struct cli_opt opts[] = {{"source", NULL, &source}, {"version", &vers, NULL}, {NULL, NULL, NULL}};
	struct cn_err err = {0};
	struct cn_store *store;
	void *model = NULL;
	int n, rc, version = 0;

	if (!doc->show_versions)
		opts[1] = (struct cli_opt){NULL, NULL, NULL};
	rc = cli_parse(argc, argv, opts, pos, 1, &n, doc->usage);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (n != 1)
		return cli_usage_error(doc->usage, "%s show needs one NAME", doc->kind);
	if (vers && (rc = cli_parse_int("version", vers, 1, &version, doc->usage)) != 0)
		return rc;
	if ((rc = cli_store(cli, &store)) != 0)
		return rc;
	if (doc->read_show(store, pos[0], version, &model, &err) < 0)
		return cli_error(&err);
	if (cli->output == CLI_JSON)
		rc = cli_print_json(doc->show_json(model));
	else
		doc->print_show(model, source);
	doc->free_show(model);
	return rc;
}

int cli_doc_command(struct cli *cli, const struct cli_doc *doc, int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct cli *cli, const struct cli_doc *doc, int argc, char **argv);
	} sub[] = {{"lint", cli_doc_lint}, {"keys", cli_doc_keys}, {"apply", cli_doc_apply}, {"list", cli_doc_list},
		   {"show", cli_doc_show}};
	if (argc < 2)
		return cli_usage_error(doc->usage, "%s needs a subcommand", doc->kind);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(doc->usage, stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++)
		if (strcmp(argv[1], sub[i].name) == 0)
			return sub[i].fn(cli, doc, argc - 1, argv + 1);
	return cli_usage_error(doc->usage, "unknown %s subcommand '%s'", doc->kind, argv[1]);
}
