/* canaryctl migrate: apply the migrations in order, once each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "canary/store.h"
#include "cli_int.h"

static const char migrate_usage[] =
	"usage: canaryctl migrate [--migrations DIR]\n"
	"  applies DIR/NNNN_name.sql in order, each once, each in its own transaction.\n"
	"  DIR: --migrations, else CANARY_MIGRATIONS, else the source tree's migrations/, else ./migrations\n";

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The source tree's migrations/ directory: CANARY_MIGRATIONS_DIR when the build defines it, else derived from this
 * file's absolute path (.../controller/cli/cli_migrate.c), which CMake passes to the compiler. */
static const char *builtin_dir(char *buf, size_t len)
{
#ifdef CANARY_MIGRATIONS_DIR
	snprintf(buf, len, "%s", CANARY_MIGRATIONS_DIR);
	return buf;
#else
	static const char tail[] = "controller/cli/cli_migrate.c";
	const char *f = __FILE__;
	size_t n = strlen(f), t = sizeof tail - 1;
	if (f[0] != '/' || n < t || strcmp(f + n - t, tail) != 0 || n - t + sizeof "migrations" > len)
		return NULL;
	snprintf(buf, len, "%.*smigrations", (int)(n - t), f);
	return buf;
#endif
}

int cmd_migrate(struct cli *cli, int argc, char **argv)
{
	const char *dir = NULL;
	char builtin[4096];
	struct cli_opt opts[] = {{"migrations", &dir, NULL}, {NULL, NULL, NULL}};
	struct cn_migrate_report *rep = NULL;
	struct cn_store *store;
	struct cn_err err = {0};
	int npos, rc;

	rc = cli_parse(argc, argv, opts, NULL, 0, &npos, migrate_usage);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (!dir)
		dir = getenv("CANARY_MIGRATIONS");
	if (!dir || !*dir) {
		dir = builtin_dir(builtin, sizeof builtin);
		if (!dir || !is_dir(dir))
			dir = "migrations";
	}
	rc = cli_store(cli, &store);
	if (rc)
		return rc;
	rep = calloc(1, sizeof *rep);
	if (!rep) {
		fputs("canaryctl: out of memory\n", stderr);
		return CN_EINTERNAL;
	}
	if (cn_store_migrate(store, dir, rep, &err) != 0) {
		rc = cli_error(&err);
		goto out;
	}
	if (cli->output == CLI_JSON) {
		rc = cli_print_json(cli_json_migrate(dir, rep));
	} else {
		for (int i = 0; i < rep->applied; i++)
			printf("applied %s\n", rep->names[i]);
		if (rep->applied == 0)
			printf("database is up to date (%d migrations in %s)\n", rep->found, dir);
		else
			printf("applied %d of %d migrations from %s\n", rep->applied, rep->found, dir);
	}
out:
	free(rep);
	return rc;
}
