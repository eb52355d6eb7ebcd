/* Internals of the model registry (src/registry/), shared by registry.c, schema.c, store.c and
 * oci.c. Layout and schema: docs/registry.md.
 *
 *   DIR/registry.db                 SQLite, WAL, foreign keys, user_version = HY_REG_SCHEMA
 *   DIR/registry.lock               flock: adds hold it shared while a blob is placed and its row
 *                                   inserted, gc exclusive (so gc never removes a blob an add is
 *                                   about to reference)
 *   DIR/blobs/sha256/ab/<64 hex>    content-addressed weights, 0444
 *   DIR/tmp/<kind>-<pid>-<n>.tmp    files being written; each is flock'ed (exclusive) by its
 *                                   writer, so gc removes only those whose writer has gone
 *
 * Pulling (oci.c) a blob into the registry:
 *   int fd; char *tmp;
 *   hy__registry_tmp_open(r, "pull", &fd, &tmp);      // DIR/tmp/pull-..., locked
 *   ... write the downloaded bytes to fd while hashing, check the digest ...
 *   hy__registry_add_blob(r, tmp, digest_hex, config_json, &ap, 1, &version);
 *   close(fd); hy__free(tmp);                          // add_blob renamed or removed tmp
 * and pushing one:
 *   hy__registry_entry_for_push(r, "pcb@3", &blob_path, &digest_hex, &config_json);
 */
#ifndef HY_REGISTRY_IMPL_H
#define HY_REGISTRY_IMPL_H

#include <sqlite3.h>

#include "core/core.h"
#include "hotyolo/registry.h"

#define HY_REG_SCHEMA 2          /* PRAGMA user_version written by this build */
#define HY_REG_APP_ID 0x68796c72 /* PRAGMA application_id: "hylr" */
#define HY_REG_NAME_MAX 63
#define HY_REG_SCENARIO_MAX 4096
#define HY_REG_KEY_MAX 128       /* metric key / tag bytes */
#define HY_REG_BUSY_MS 10000

struct hy_registry {
    char *dir;       /* as given (no trailing '/') */
    char *db_path;   /* DIR/registry.db */
    sqlite3 *db;
    int lock_fd;     /* DIR/registry.lock (opened once; flock per operation) */
};

/* ---- schema.c ---- */
/* Brings the open database to HY_REG_SCHEMA (each migration one transaction); refuses a newer
 * schema or a database that is not a registry. Errors name db_path. */
hy_status hy__registry_schema_migrate(sqlite3 *db, const char *db_path);
/* The SQL of migration `to` (1..HY_REG_SCHEMA); NULL outside. Tests build old databases. */
const char *hy__registry_schema_sql(int to);

/* ---- store.c ---- */
/* "DIR/blobs/sha256/ab/<hex>" (hy__free). */
char *hy__registry_blob_path(const hy_registry *r, const char *digest_hex);
/* Creates DIR/tmp/<kind>-<pid>-<n>.tmp (0600, O_EXCL) and takes an exclusive flock on it; keep
 * *fd open until the file is renamed or removed (gc skips locked temp files). */
hy_status hy__registry_tmp_open(hy_registry *r, const char *kind, int *fd, char **path);
/* Moves tmp_path (complete, digest already checked) into the store: fsync, chmod 0444, rename
 * to its blob path (replacing an existing blob of that digest: same bytes, or a repair), fsync
 * the directory. Call with the registry lock held shared. */
hy_status hy__registry_blob_commit(hy_registry *r, const char *tmp_path, const char *digest_hex);
/* Streams path through sha256; *size gets its length. */
hy_status hy__registry_hash_file(const char *path, char hex[65], uint64_t *size);
/* The same, copying the bytes to the open file `out` (named out_name in errors) as they are
 * hashed. */
hy_status hy__registry_copy_hash(const char *path, int out, const char *out_name, char hex[65], uint64_t *size);
/* Shared (excl 0) or exclusive flock on DIR/registry.lock; waits. */
hy_status hy__registry_lock(hy_registry *r, int excl);
void hy__registry_unlock(hy_registry *r);
int hy__registry_is_hex64(const char *s);

/* ---- registry.c ---- */
/* Adds a blob already in DIR/tmp (hy__registry_tmp_open) whose sha256 is digest_hex (checked
 * again here against hy_inspect's hash: HY_ERR_FORMAT naming both). The file must load as a
 * model. config_json (may be NULL): an entry as hy_registry_show writes it; its scenario,
 * metrics and tags are used where p gives none (format, architecture, record ... always come
 * from the file itself). reuse 1: when NAME has a version with this digest already, that
 * version is returned and nothing is added. tmp_path is renamed or removed in every case. */
hy_status hy__registry_add_blob(hy_registry *r, const char *tmp_path, const char *digest_hex,
                                const char *config_json, const hy_registry_add_params *p, int reuse,
                                int *version_out);
/* What pushing ref needs: its blob path, digest (64 hex) and the entry JSON (hy_registry_show
 * without "blob", the config blob). Each out: hy__free. */
hy_status hy__registry_entry_for_push(hy_registry *r, const char *ref, char **blob_path, char **digest_hex,
                                      char **config_json);
/* 1 when s is a valid NAME (letters, digits, '.', '_', '-', <= 63 bytes, first alnum). */
int hy__registry_name_ok(const char *s);

#endif
