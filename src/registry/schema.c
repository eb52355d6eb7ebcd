/* Registry schema: the SQL of each version and the migrations between them (docs/registry.md,
 * "Schema"). PRAGMA user_version holds the version, application_id marks the file as ours. */
#include <stdio.h>
#include <string.h>

#include "registry/registry_impl.h"

// --- migrations: MIGRATION[k] takes user_version k to k + 1 (append only) ---

static const char *const MIGRATION[HY_REG_SCHEMA] = {
    /* 0 -> 1: models, versions and what points at them */
    "CREATE TABLE models(\n"
    "  name TEXT PRIMARY KEY NOT NULL,\n"
    "  created TEXT NOT NULL,\n"
    "  last_version INTEGER NOT NULL DEFAULT 0); -- highest number ever given (not reused)\n"
    "CREATE TABLE blobs(\n"
    "  digest TEXT PRIMARY KEY NOT NULL,   -- 64 lowercase hex (sha256 of the file)\n"
    "  size INTEGER NOT NULL);\n"
    "CREATE TABLE versions(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  name TEXT NOT NULL REFERENCES models(name),\n"
    "  version INTEGER NOT NULL CHECK(version >= 1),\n"
    "  digest TEXT NOT NULL REFERENCES blobs(digest),\n"
    "  size INTEGER NOT NULL,\n"
    "  added TEXT NOT NULL,                -- UTC ISO 8601\n"
    "  format TEXT, arch TEXT, variant TEXT, nc INTEGER,\n"
    "  names TEXT,                         -- JSON array\n"
    "  parameters INTEGER, imgsz INTEGER,\n"
    "  scenario TEXT,\n"
    "  record TEXT,                        -- JSON object: the file's metadata (hy_inspect)\n"
    "  UNIQUE(name, version));\n"
    "CREATE TABLE metrics(\n"
    "  version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,\n"
    "  key TEXT NOT NULL, value REAL NOT NULL,\n"
    "  PRIMARY KEY(version_id, key));\n"
    "CREATE TABLE aliases(\n"
    "  name TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL,\n"
    "  PRIMARY KEY(name, alias),\n"
    "  FOREIGN KEY(name, version) REFERENCES versions(name, version));\n"
    "CREATE TABLE bindings(\n"
    "  project TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,\n"
    "  FOREIGN KEY(name, version) REFERENCES versions(name, version));\n",
    /* 1 -> 2: free labels per version; digest lookups (gc, verify, reuse) */
    "CREATE TABLE tags(\n"
    "  version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,\n"
    "  tag TEXT NOT NULL,\n"
    "  PRIMARY KEY(version_id, tag));\n"
    "CREATE INDEX versions_digest ON versions(digest);\n",
};

const char *hy__registry_schema_sql(int to) {
    return to >= 1 && to <= HY_REG_SCHEMA ? MIGRATION[to - 1] : NULL;
}

static int pragma_int(sqlite3 *db, const char *sql, int *out) {
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(s, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return rc;
}

static hy_status sqlerr(sqlite3 *db, const char *db_path, const char *what) {
    return hy__error(sqlite3_errcode(db) == SQLITE_BUSY ? HY_ERR_BUSY : HY_ERR_IO, "%s: %s: %s", db_path, what,
                     sqlite3_errmsg(db));
}

// --- migrate ---

/* One step k -> k + 1 inside its own write transaction; re-reads the version under the lock
 * (another process may have migrated meanwhile). */
static hy_status migrate_step(sqlite3 *db, const char *db_path, int *cur) {
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return sqlerr(db, db_path, "cannot lock the database for a migration");
    int v = 0, app = 0, n_tables = 0;
    if (pragma_int(db, "PRAGMA user_version", &v) || pragma_int(db, "PRAGMA application_id", &app) ||
        pragma_int(db, "SELECT count(*) FROM sqlite_master", &n_tables)) {
        hy_status st = sqlerr(db, db_path, "cannot read the schema version");
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return st;
    }
    if (v >= HY_REG_SCHEMA) { /* done by someone else */
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        *cur = v;
        return HY_OK;
    }
    if ((app != 0 && app != HY_REG_APP_ID) || (v == 0 && n_tables > 0)) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return hy__error(HY_ERR_FORMAT, "%s: not a hotyolo registry database (application_id %d, %d tables)",
                         db_path, app, n_tables);
    }
    char set[96];
    snprintf(set, sizeof set, "PRAGMA user_version = %d; PRAGMA application_id = %d", v + 1, HY_REG_APP_ID);
    if (sqlite3_exec(db, MIGRATION[v], NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, set, NULL, NULL, NULL) != SQLITE_OK) {
        char what[64];
        snprintf(what, sizeof what, "migration %d -> %d failed", v, v + 1);
        hy_status st = sqlerr(db, db_path, what);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return st;
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        hy_status st = sqlerr(db, db_path, "cannot commit a migration");
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return st;
    }
    hy__log(HY_LOG_INFO, "%s: registry schema %d -> %d", db_path, v, v + 1);
    *cur = v + 1;
    return HY_OK;
}

hy_status hy__registry_schema_migrate(sqlite3 *db, const char *db_path) {
    int v = 0;
    if (pragma_int(db, "PRAGMA user_version", &v)) return sqlerr(db, db_path, "cannot read the schema version");
    if (v > HY_REG_SCHEMA)
        return hy__error(HY_ERR_UNSUPPORTED,
                         "%s: registry schema version %d is newer than this hotyolo's (%d); use a newer hotyolo",
                         db_path, v, HY_REG_SCHEMA);
    while (v < HY_REG_SCHEMA) {
        hy_status st = migrate_step(db, db_path, &v);
        if (st) return st;
    }
    if (v > HY_REG_SCHEMA)
        return hy__error(HY_ERR_UNSUPPORTED, "%s: registry schema version %d is newer than this hotyolo's (%d)",
                         db_path, v, HY_REG_SCHEMA);
    return HY_OK;
}
