/* The local model registry: a SQLite catalogue over a content-addressed blob store
 * (include/hotyolo/registry.h, docs/registry.md). Every statement is prepared with bound
 * parameters; errors name the registry directory and the reference or file. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "core/sha256.h"
#include "registry/registry_impl.h"

#define CONFIG_JSON_MAX ((size_t)16 << 20) /* a pulled entry (record <= 4 MiB + metrics) */

// --- small helpers ---

static hy_status sqlfail(hy_registry *r, const char *what) {
    int rc = sqlite3_errcode(r->db);
    hy_status st = (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) ? HY_ERR_BUSY : HY_ERR_IO;
    return hy__error(st, "registry %s: %s: %s", r->dir, what, sqlite3_errmsg(r->db));
}

static hy_status prep(hy_registry *r, const char *sql, sqlite3_stmt **s) {
    if (sqlite3_prepare_v2(r->db, sql, -1, s, NULL) != SQLITE_OK) return sqlfail(r, "cannot prepare a statement");
    return HY_OK;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v) {
    if (v) sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(s, i);
}

static hy_status exec(hy_registry *r, const char *sql) {
    if (sqlite3_exec(r->db, sql, NULL, NULL, NULL) != SQLITE_OK) return sqlfail(r, sql);
    return HY_OK;
}

static hy_status begin(hy_registry *r) { return exec(r, "BEGIN IMMEDIATE"); }
static hy_status commit(hy_registry *r) {
    hy_status st = exec(r, "COMMIT");
    if (st) sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}
static void rollback(hy_registry *r) { sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL); }

static char *json_dup(json_object *o) {
    const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                          JSON_C_TO_STRING_NOSLASHESCAPE);
    return t ? hy__strdup(t) : NULL;
}

/* Parses text (at most max bytes) as JSON; NULL when it is not. */
static json_object *json_parse(const char *text, size_t max) {
    size_t n = strnlen(text, max + 1);
    if (n > max) return NULL;
    json_tokener *tok = json_tokener_new_ex(64);
    if (!tok) return NULL;
    json_object *o = json_tokener_parse_ex(tok, text, (int)n);
    if (o && json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

static void utc_now(char out[32]) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

// --- names and references ---

static int is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

int hy__registry_name_ok(const char *s) {
    if (!s || !is_alnum(s[0])) return 0;
    size_t i = 0;
    for (; s[i]; i++) {
        if (i >= HY_REG_NAME_MAX) return 0;
        if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-') return 0;
    }
    return 1;
}

static int all_digits(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

static int alias_ok(const char *s) { return hy__registry_name_ok(s) && !all_digits(s); }

/* A reference split: name, and either version (> 0), alias, or neither (latest / project). */
typedef struct ref {
    char name[HY_REG_NAME_MAX + 1];
    char alias[HY_REG_NAME_MAX + 1];
    int version;
} ref;

static hy_status ref_parse(hy_registry *r, const char *s, ref *out) {
    memset(out, 0, sizeof *out);
    if (!s) return hy__error(HY_ERR_INVALID_ARG, "registry %s: reference is NULL", r->dir);
    const char *at = strchr(s, '@');
    size_t nl = at ? (size_t)(at - s) : strlen(s);
    if (nl == 0 || nl > HY_REG_NAME_MAX) goto bad;
    memcpy(out->name, s, nl);
    if (!hy__registry_name_ok(out->name)) goto bad;
    if (!at) return HY_OK;
    const char *x = at + 1;
    if (all_digits(x)) {
        if (strlen(x) > 9) goto bad;
        out->version = atoi(x);
        if (out->version < 1) goto bad;
    } else {
        if (strlen(x) > HY_REG_NAME_MAX || !alias_ok(x)) goto bad;
        strcpy(out->alias, x);
    }
    return HY_OK;
bad:
    return hy__error(HY_ERR_INVALID_ARG,
                     "registry %s: bad reference \"%.200s\" (NAME, NAME@VERSION, NAME@ALIAS or PROJECT; names: "
                     "letters, digits, '.', '_', '-', at most 63 bytes, starting with a letter or digit)",
                     r->dir, s);
}

/* The versions row a reference names: *id, and the canonical name / version. */
static hy_status ref_find(hy_registry *r, const char *s, sqlite3_int64 *id, char name[HY_REG_NAME_MAX + 1],
                          int *version) {
    ref rf;
    hy_status st = ref_parse(r, s, &rf);
    if (st) return st;
    sqlite3_stmt *q = NULL;
    int v = rf.version;
    char nm[HY_REG_NAME_MAX + 1];
    strcpy(nm, rf.name);
    if (rf.alias[0]) {
        if ((st = prep(r, "SELECT version FROM aliases WHERE name = ?1 AND alias = ?2", &q))) return st;
        bind_text(q, 1, rf.name);
        bind_text(q, 2, rf.alias);
        int rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) v = sqlite3_column_int(q, 0);
        else if (rc != SQLITE_DONE) st = sqlfail(r, s);
        sqlite3_finalize(q);
        if (st) return st;
        if (!v) return hy__error(HY_ERR_NOT_FOUND, "registry %s: %s: no alias \"%s\" of model %s", r->dir, s, rf.alias,
                                 rf.name);
    } else if (!v) { /* latest version, else a project's binding */
        if ((st = prep(r, "SELECT max(version) FROM versions WHERE name = ?1", &q))) return st;
        bind_text(q, 1, rf.name);
        int rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) v = sqlite3_column_int(q, 0);
        else st = sqlfail(r, s);
        sqlite3_finalize(q);
        if (st) return st;
        if (!v) {
            if ((st = prep(r, "SELECT name, version FROM bindings WHERE project = ?1", &q))) return st;
            bind_text(q, 1, rf.name);
            rc = sqlite3_step(q);
            if (rc == SQLITE_ROW) {
                snprintf(nm, sizeof nm, "%s", (const char *)sqlite3_column_text(q, 0));
                v = sqlite3_column_int(q, 1);
            } else if (rc != SQLITE_DONE) st = sqlfail(r, s);
            sqlite3_finalize(q);
            if (st) return st;
            if (!v) return hy__error(HY_ERR_NOT_FOUND, "registry %s: %s: no model or project of that name", r->dir, s);
        }
    }
    if ((st = prep(r, "SELECT id FROM versions WHERE name = ?1 AND version = ?2", &q))) return st;
    bind_text(q, 1, nm);
    sqlite3_bind_int(q, 2, v);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) *id = sqlite3_column_int64(q, 0);
    else if (rc == SQLITE_DONE) st = hy__error(HY_ERR_NOT_FOUND, "registry %s: %s: no version %s@%d", r->dir, s, nm, v);
    else st = sqlfail(r, s);
    sqlite3_finalize(q);
    if (st) return st;
    if (name) strcpy(name, nm);
    if (version) *version = v;
    return HY_OK;
}

// --- open / close ---

static hy_status mkdirs(const char *dir) {
    char buf[PATH_MAX];
    if (strlen(dir) >= sizeof buf) return hy__error(HY_ERR_INVALID_ARG, "registry %.200s: path too long", dir);
    strcpy(buf, dir);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return hy__error(HY_ERR_IO, "registry %s: cannot create %s: %s", dir, buf, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    return HY_OK;
}

static char *path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = hy__malloc(n);
    if (s) snprintf(s, n, "%s/%s", a, b);
    return s;
}

hy_status hy_registry_open(const char *dir, int create, hy_registry **out) {
    if (!out) return hy__error(HY_ERR_INVALID_ARG, "hy_registry_open: out is NULL");
    if (!dir || !*dir) dir = getenv("HOTYOLO_REGISTRY");
    if (!dir || !*dir)
        return hy__error(HY_ERR_INVALID_ARG, "no registry directory given (--registry DIR or HOTYOLO_REGISTRY)");
    hy_status st = HY_OK;
    hy_registry *r = hy__calloc(1, sizeof *r);
    if (!r) return hy__error(HY_ERR_NOMEM, "registry %s: out of memory", dir);
    r->lock_fd = -1;
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    r->dir = hy__strndup(dir, n);
    r->db_path = r->dir ? path_join(r->dir, "registry.db") : NULL;
    char *lock = r->dir ? path_join(r->dir, "registry.lock") : NULL;
    if (!r->dir || !r->db_path || !lock) {
        st = hy__error(HY_ERR_NOMEM, "registry %s: out of memory", dir);
        goto fail;
    }
    struct stat sb;
    if (!create && stat(r->db_path, &sb) != 0) {
        st = hy__error(HY_ERR_NOT_FOUND, "registry %s: no registry here (%s: %s)", r->dir, r->db_path,
                       strerror(errno));
        goto fail;
    }
    if (create && (st = mkdirs(r->dir))) goto fail;
    r->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (r->lock_fd < 0) {
        st = hy__error(HY_ERR_IO, "registry %s: cannot open %s: %s", r->dir, lock, strerror(errno));
        goto fail;
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(r->db_path, &r->db, flags, NULL) != SQLITE_OK) {
        st = hy__error(HY_ERR_IO, "registry %s: cannot open %s: %s", r->dir, r->db_path,
                       r->db ? sqlite3_errmsg(r->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(r->db, HY_REG_BUSY_MS);
    sqlite3_extended_result_codes(r->db, 0);
    if ((st = exec(r, "PRAGMA foreign_keys = ON"))) goto fail;
    if ((st = exec(r, "PRAGMA journal_mode = WAL"))) goto fail;
    if ((st = exec(r, "PRAGMA synchronous = FULL"))) goto fail;
    if ((st = hy__registry_schema_migrate(r->db, r->db_path))) {
        hy__error_prefix(st, "registry %s", r->dir);
        goto fail;
    }
    hy__free(lock);
    *out = r;
    return HY_OK;
fail:
    hy__free(lock);
    hy_registry_close(r);
    return st;
}

void hy_registry_close(hy_registry *r) {
    if (!r) return;
    if (r->db) sqlite3_close_v2(r->db);
    if (r->lock_fd >= 0) close(r->lock_fd);
    hy__free(r->db_path);
    hy__free(r->dir);
    hy__free(r);
}

const char *hy_registry_dir(const hy_registry *r) { return r ? r->dir : NULL; }

hy_registry_add_params hy_registry_add_default_params(void) {
    hy_registry_add_params p;
    memset(&p, 0, sizeof p);
    return p;
}

// --- entries as JSON ---

static json_object *col_text(sqlite3_stmt *q, int i) {
    const unsigned char *t = sqlite3_column_text(q, i);
    return t ? json_object_new_string((const char *)t) : NULL;
}

/* Appends column 0 of every row of q to array a. */
static int rows_to_array(sqlite3_stmt *q, json_object *a) {
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) json_object_array_add(a, col_text(q, 0));
    return rc == SQLITE_DONE ? 0 : -1;
}

/* The entry of versions row id (registry.h, hy_registry_show). */
static hy_status entry_json(hy_registry *r, sqlite3_int64 id, int with_record, int with_blob, json_object **out) {
    sqlite3_stmt *q = NULL;
    json_object *o = json_object_new_object();
    hy_status st = o ? prep(r,
                            "SELECT name, version, digest, size, added, format, arch, variant, nc, names, "
                            "parameters, imgsz, scenario, record FROM versions WHERE id = ?1",
                            &q)
                     : hy__error(HY_ERR_NOMEM, "registry %s: out of memory", r->dir);
    if (st) goto fail;
    sqlite3_bind_int64(q, 1, id);
    if (sqlite3_step(q) != SQLITE_ROW) {
        st = sqlfail(r, "entry vanished");
        goto fail;
    }
    char name[HY_REG_NAME_MAX + 1], digest[65];
    snprintf(name, sizeof name, "%s", (const char *)sqlite3_column_text(q, 0));
    snprintf(digest, sizeof digest, "%s", (const char *)sqlite3_column_text(q, 2));
    int version = sqlite3_column_int(q, 1);
    char dg[72];
    snprintf(dg, sizeof dg, "sha256:%s", digest);
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "version", json_object_new_int(version));
    json_object_object_add(o, "digest", json_object_new_string(dg));
    json_object_object_add(o, "size", json_object_new_int64(sqlite3_column_int64(q, 3)));
    json_object_object_add(o, "added", col_text(q, 4));
    json_object_object_add(o, "format", col_text(q, 5));
    json_object_object_add(o, "architecture", col_text(q, 6));
    json_object_object_add(o, "variant", col_text(q, 7));
    json_object_object_add(o, "nc", json_object_new_int(sqlite3_column_int(q, 8)));
    const char *names = (const char *)sqlite3_column_text(q, 9);
    json_object_object_add(o, "names", names ? json_parse(names, CONFIG_JSON_MAX) : json_object_new_array());
    json_object_object_add(o, "parameters", json_object_new_int64(sqlite3_column_int64(q, 10)));
    json_object_object_add(o, "imgsz", json_object_new_int(sqlite3_column_int(q, 11)));
    json_object_object_add(o, "scenario", col_text(q, 12));
    json_object *record = NULL;
    if (with_record) {
        const char *rec = (const char *)sqlite3_column_text(q, 13);
        record = rec ? json_parse(rec, CONFIG_JSON_MAX) : NULL;
    }
    sqlite3_finalize(q);
    q = NULL;
    /* metrics {k: v} */
    json_object *m = json_object_new_object();
    json_object_object_add(o, "metrics", m);
    if ((st = prep(r, "SELECT key, value FROM metrics WHERE version_id = ?1 ORDER BY key", &q))) goto fail;
    sqlite3_bind_int64(q, 1, id);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        json_object_object_add(m, (const char *)sqlite3_column_text(q, 0),
                               json_object_new_double(sqlite3_column_double(q, 1)));
    sqlite3_finalize(q);
    q = NULL;
    if (rc != SQLITE_DONE) goto sql;
    /* tags, aliases, bound_by */
    static const char *const lists[3][2] = {
        {"tags", "SELECT tag FROM tags WHERE version_id = ?3 ORDER BY rowid"},
        {"aliases", "SELECT alias FROM aliases WHERE name = ?1 AND version = ?2 ORDER BY alias"},
        {"bound_by", "SELECT project FROM bindings WHERE name = ?1 AND version = ?2 ORDER BY project"},
    };
    for (int k = 0; k < 3; k++) {
        json_object *a = json_object_new_array();
        json_object_object_add(o, lists[k][0], a);
        if ((st = prep(r, lists[k][1], &q))) goto fail;
        if (k == 0) sqlite3_bind_int64(q, 3, id);
        else {
            bind_text(q, 1, name);
            sqlite3_bind_int(q, 2, version);
        }
        rc = rows_to_array(q, a);
        sqlite3_finalize(q);
        q = NULL;
        if (rc) goto sql;
    }
    if (with_record) json_object_object_add(o, "record", record ? record : json_object_new_object());
    if (with_blob) {
        char *bp = hy__registry_blob_path(r, digest);
        json_object_object_add(o, "blob", bp ? json_object_new_string(bp) : NULL);
        hy__free(bp);
    }
    *out = o;
    return HY_OK;
sql:
    st = sqlfail(r, "cannot read an entry");
fail:
    sqlite3_finalize(q);
    json_object_put(o);
    return st;
}

// --- resolve / show / list ---

hy_status hy_registry_resolve(hy_registry *r, const char *refs, char **path, char **entry) {
    if (!r || !path) return hy__error(HY_ERR_INVALID_ARG, "hy_registry_resolve: registry and path are required");
    sqlite3_int64 id;
    hy_status st = ref_find(r, refs, &id, NULL, NULL);
    if (st) return st;
    json_object *o = NULL;
    if ((st = entry_json(r, id, 1, 1, &o))) return st;
    char *p = hy__strdup(json_object_get_string(json_object_object_get(o, "blob")));
    char *e = entry ? json_dup(o) : NULL;
    json_object_put(o);
    if (!p || (entry && !e)) {
        hy__free(p);
        hy__free(e);
        return hy__error(HY_ERR_NOMEM, "registry %s: out of memory", r->dir);
    }
    *path = p;
    if (entry) *entry = e;
    return HY_OK;
}

hy_status hy_registry_show(hy_registry *r, const char *refs, char **json) {
    if (!r || !json) return hy__error(HY_ERR_INVALID_ARG, "hy_registry_show: registry and json are required");
    sqlite3_int64 id;
    hy_status st = ref_find(r, refs, &id, NULL, NULL);
    json_object *o = NULL;
    if (st || (st = entry_json(r, id, 1, 1, &o))) return st;
    char *s = json_dup(o);
    json_object_put(o);
    if (!s) return hy__error(HY_ERR_NOMEM, "registry %s: out of memory", r->dir);
    *json = s;
    return HY_OK;
}

hy_status hy_registry_list(hy_registry *r, char **json) {
    if (!r || !json) return hy__error(HY_ERR_INVALID_ARG, "hy_registry_list: registry and json are required");
    sqlite3_stmt *q = NULL;
    json_object *a = json_object_new_array();
    hy_status st = a ? HY_OK : hy__error(HY_ERR_NOMEM, "registry %s: out of memory", r->dir);
    /* one read transaction: a consistent snapshot while others add */
    if (!st) st = exec(r, "BEGIN");
    if (st) goto done;
    if (!(st = prep(r, "SELECT id FROM versions ORDER BY name, version", &q))) {
        int rc;
        while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
            json_object *e = NULL;
            if ((st = entry_json(r, sqlite3_column_int64(q, 0), 0, 0, &e))) break;
            json_object_array_add(a, e);
        }
        if (!st && rc != SQLITE_DONE) st = sqlfail(r, "cannot list");
    }
    sqlite3_finalize(q);
    rollback(r);
done:
    if (!st) {
        char *s = json_dup(a);
        if (s) *json = s;
        else st = hy__error(HY_ERR_NOMEM, "registry %s: out of memory", r->dir);
    }
    json_object_put(a);
    return st;
}

// --- add ---

/* What an add stores besides the file's own description: bounded, validated. */
typedef struct add_spec {
    char *keys[HY_REGISTRY_MAX_METRICS];
    double values[HY_REGISTRY_MAX_METRICS];
    int n_metrics;
    char *tags[HY_REGISTRY_MAX_TAGS];
    int n_tags;
    char *scenario;
} add_spec;

static void spec_free(add_spec *s) {
    for (int i = 0; i < s->n_metrics; i++) hy__free(s->keys[i]);
    for (int i = 0; i < s->n_tags; i++) hy__free(s->tags[i]);
    hy__free(s->scenario);
}

static int key_ok(const char *k) {
    size_t n = strnlen(k, HY_REG_KEY_MAX + 1);
    if (n == 0 || n > HY_REG_KEY_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] < 0x20 || k[i] == 0x7f) return 0;
    return 1;
}

/* Sets key = v (replacing an earlier value); 1 when there was no room. */
static int spec_metric(add_spec *s, const char *k, double v, int *nomem) {
    for (int i = 0; i < s->n_metrics; i++)
        if (strcmp(s->keys[i], k) == 0) {
            s->values[i] = v;
            return 0;
        }
    if (s->n_metrics >= HY_REGISTRY_MAX_METRICS) return 1;
    char *d = hy__strdup(k);
    if (!d) {
        *nomem = 1;
        return 0;
    }
    s->keys[s->n_metrics] = d;
    s->values[s->n_metrics++] = v;
    return 0;
}

static double json_num(json_object *v, int *ok) {
    *ok = 0;
    if (!v) return 0;
    enum json_type t = json_object_get_type(v);
    if (t == json_type_double || t == json_type_int) {
        double d = json_object_get_double(v);
        *ok = isfinite(d);
        return d;
    }
    if (t == json_type_string) { /* safetensors metadata values are strings */
        const char *s = json_object_get_string(v);
        char *end;
        errno = 0;
        double d = strtod(s, &end);
        *ok = end != s && *end == 0 && errno == 0 && isfinite(d);
        return d;
    }
    return 0;
}

/* Metrics the file records: Ultralytics' train_metrics and best_fitness; hotyolo's last
 * validated results row and best_fitness. Keys beyond the bounds are skipped (logged). */
static void import_metrics(hy_registry *r, const char *file, json_object *meta, add_spec *s, int *nomem) {
    int skipped = 0, ok;
    json_object *tm = json_object_object_get(meta, "train_metrics");
    if (tm && json_object_is_type(tm, json_type_object)) {
        json_object_object_foreach(tm, k, v) {
            double d = json_num(v, &ok);
            if (ok && key_ok(k)) skipped += spec_metric(s, k, d, nomem);
        }
    }
    json_object *res = json_object_object_get(meta, "hotyolo.train.results");
    json_object *rows = res && json_object_is_type(res, json_type_string)
                            ? json_parse(json_object_get_string(res), (size_t)4 << 20)
                            : NULL;
    if (rows && json_object_is_type(rows, json_type_array)) {
        json_object *last = NULL;
        for (size_t i = 0; i < json_object_array_length(rows); i++) {
            json_object *row = json_object_array_get_idx(rows, i);
            json_object *val = json_object_object_get(row, "validated");
            if (json_object_is_type(row, json_type_object) && val && json_object_get_boolean(val)) last = row;
        }
        if (last) {
            json_object_object_foreach(last, k, v) {
                if (strncmp(k, "metrics/", 8) && strncmp(k, "val/", 4) && strcmp(k, "fitness")) continue;
                double d = json_num(v, &ok);
                if (ok && key_ok(k)) skipped += spec_metric(s, k, d, nomem);
            }
        }
    }
    json_object_put(rows);
    static const char *const best[] = {"hotyolo.train.best_fitness", "best_fitness"};
    for (int i = 0; i < 2; i++) {
        double d = json_num(json_object_object_get(meta, best[i]), &ok);
        if (ok) skipped += spec_metric(s, "best_fitness", d, nomem);
    }
    if (skipped)
        hy__log(HY_LOG_WARN, "registry %s: %s: %d recorded metrics not imported (at most %d)", r->dir, file, skipped,
                HY_REGISTRY_MAX_METRICS);
}

/* The caller's part of an add (p; config: a pulled entry, used where p gives nothing). */
static hy_status spec_fill(hy_registry *r, const hy_registry_add_params *p, json_object *config, add_spec *s,
                           int *nomem) {
    if (p->n_metrics < 0 || p->n_metrics > HY_REGISTRY_MAX_METRICS || (p->n_metrics && (!p->metric_keys || !p->metric_values)))
        return hy__error(HY_ERR_INVALID_ARG, "registry %s: %d metrics (at most %d)", r->dir, p->n_metrics,
                         HY_REGISTRY_MAX_METRICS);
    if (p->n_tags < 0 || p->n_tags > HY_REGISTRY_MAX_TAGS || (p->n_tags && !p->tags))
        return hy__error(HY_ERR_INVALID_ARG, "registry %s: %d tags (at most %d)", r->dir, p->n_tags,
                         HY_REGISTRY_MAX_TAGS);
    for (int i = 0; i < p->n_metrics; i++) {
        if (!p->metric_keys[i] || !key_ok(p->metric_keys[i]))
            return hy__error(HY_ERR_INVALID_ARG, "registry %s: metric key %d: 1 to %d printable bytes", r->dir, i + 1,
                             HY_REG_KEY_MAX);
        if (!isfinite(p->metric_values[i]))
            return hy__error(HY_ERR_INVALID_ARG, "registry %s: metric %s: not a finite number", r->dir,
                             p->metric_keys[i]);
    }
    for (int i = 0; i < p->n_tags; i++)
        if (!p->tags[i] || !key_ok(p->tags[i]))
            return hy__error(HY_ERR_INVALID_ARG, "registry %s: tag %d: 1 to %d printable bytes", r->dir, i + 1,
                             HY_REG_KEY_MAX);
    const char *scen = p->scenario;
    json_object *cs = config ? json_object_object_get(config, "scenario") : NULL;
    if (!scen && cs && json_object_is_type(cs, json_type_string)) scen = json_object_get_string(cs);
    if (scen) {
        if (strnlen(scen, HY_REG_SCENARIO_MAX + 1) > HY_REG_SCENARIO_MAX)
            return hy__error(HY_ERR_INVALID_ARG, "registry %s: scenario longer than %d bytes", r->dir,
                             HY_REG_SCENARIO_MAX);
        if (!(s->scenario = hy__strdup(scen))) *nomem = 1;
    }
    /* the config's metrics first, the caller's override them */
    json_object *cm = config ? json_object_object_get(config, "metrics") : NULL;
    if (cm && json_object_is_type(cm, json_type_object)) {
        json_object_object_foreach(cm, k, v) {
            int ok;
            double d = json_num(v, &ok);
            if (!ok || !key_ok(k) || spec_metric(s, k, d, nomem))
                return hy__error(HY_ERR_FORMAT, "registry %s: pulled entry: metric \"%.128s\" is not a number with a "
                                 "key of at most %d bytes, or more than %d metrics", r->dir, k, HY_REG_KEY_MAX,
                                 HY_REGISTRY_MAX_METRICS);
        }
    }
    for (int i = 0; i < p->n_metrics; i++)
        if (spec_metric(s, p->metric_keys[i], p->metric_values[i], nomem))
            return hy__error(HY_ERR_INVALID_ARG, "registry %s: more than %d metrics", r->dir, HY_REGISTRY_MAX_METRICS);
    json_object *ct = config ? json_object_object_get(config, "tags") : NULL;
    if (p->n_tags) {
        for (int i = 0; i < p->n_tags && !*nomem; i++)
            if (!(s->tags[s->n_tags++] = hy__strdup(p->tags[i]))) *nomem = 1;
    } else if (ct && json_object_is_type(ct, json_type_array)) {
        size_t n = json_object_array_length(ct);
        if (n > HY_REGISTRY_MAX_TAGS)
            return hy__error(HY_ERR_FORMAT, "registry %s: pulled entry: %zu tags (at most %d)", r->dir, n,
                             HY_REGISTRY_MAX_TAGS);
        for (size_t i = 0; i < n && !*nomem; i++) {
            json_object *t = json_object_array_get_idx(ct, i);
            if (!json_object_is_type(t, json_type_string) || !key_ok(json_object_get_string(t)))
                return hy__error(HY_ERR_FORMAT, "registry %s: pulled entry: tag %zu is not 1 to %d bytes", r->dir,
                                 i + 1, HY_REG_KEY_MAX);
            if (!(s->tags[s->n_tags++] = hy__strdup(json_object_get_string(t)))) *nomem = 1;
        }
    }
    return HY_OK;
}

/* hy_inspect of file, which must describe a loadable model; *sha gets its hash. */
static hy_status inspect_model(hy_registry *r, const char *file, json_object **out) {
    char *txt = NULL;
    hy_status st = hy_inspect(file, 0, &txt);
    if (st) return hy__error_prefix(st, "registry %s: cannot add %s", r->dir, file);
    json_object *o = json_parse(txt, (size_t)64 << 20);
    hy_free(txt);
    if (!o) return hy__error(HY_ERR_NOMEM, "registry %s: %s: cannot read its description", r->dir, file);
    json_object *valid = json_object_object_get(o, "valid");
    json_object *sha = json_object_object_get(o, "sha256");
    if (!valid || !json_object_get_boolean(valid) || !sha || !hy__registry_is_hex64(json_object_get_string(sha))) {
        json_object *pr = json_object_object_get(o, "problems");
        hy_status e = hy__error(HY_ERR_FORMAT, "registry %s: %s does not load as a model: %s", r->dir, file,
                                pr ? json_object_get_string(pr) : "unknown architecture");
        json_object_put(o);
        return e;
    }
    *out = o;
    return HY_OK;
}

static const char *jstr(json_object *o, const char *k) {
    json_object *v = json_object_object_get(o, k);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* The catalogue part of an add, in one transaction. *version_out: the version. */
static hy_status insert_entry(hy_registry *r, const char *name, int want, const char *digest, uint64_t size,
                              json_object *desc, const add_spec *s, int reuse, int *version_out) {
    sqlite3_stmt *q = NULL;
    hy_status st = begin(r);
    if (st) return st;
    char now[32];
    utc_now(now);
    int version = 0;
    if (reuse) { /* the version of NAME that already holds this content */
        if ((st = prep(r, "SELECT max(version) FROM versions WHERE name = ?1 AND digest = ?2", &q))) goto fail;
        bind_text(q, 1, name);
        bind_text(q, 2, digest);
        if (sqlite3_step(q) != SQLITE_ROW) goto sql;
        version = sqlite3_column_int(q, 0);
        sqlite3_finalize(q);
        q = NULL;
        if (version) {
            rollback(r);
            *version_out = version;
            return HY_OK;
        }
    }
    if ((st = prep(r, "INSERT OR IGNORE INTO models(name, created) VALUES(?1, ?2)", &q))) goto fail;
    bind_text(q, 1, name);
    bind_text(q, 2, now);
    if (sqlite3_step(q) != SQLITE_DONE) goto sql;
    sqlite3_finalize(q);
    q = NULL;
    /* next = past every number ever given (removed versions' numbers are not reused) */
    if ((st = prep(r,
                   "SELECT max(m.last_version, coalesce((SELECT max(version) FROM versions WHERE name = ?1), 0)), "
                   "(SELECT count(*) FROM versions WHERE name = ?1 AND version = ?2) FROM models m WHERE m.name = ?1",
                   &q)))
        goto fail;
    bind_text(q, 1, name);
    sqlite3_bind_int(q, 2, want);
    if (sqlite3_step(q) != SQLITE_ROW) goto sql;
    int last = sqlite3_column_int(q, 0), taken = sqlite3_column_int(q, 1);
    sqlite3_finalize(q);
    q = NULL;
    if (want && taken) {
        st = hy__error(HY_ERR_BUSY, "registry %s: %s@%d exists already", r->dir, name, want);
        goto fail;
    }
    if (!want && last >= 999999999) {
        st = hy__error(HY_ERR_INVALID_ARG, "registry %s: %s: version numbers exhausted", r->dir, name);
        goto fail;
    }
    version = want ? want : last + 1;
    if ((st = prep(r, "UPDATE models SET last_version = max(last_version, ?2) WHERE name = ?1", &q))) goto fail;
    bind_text(q, 1, name);
    sqlite3_bind_int(q, 2, version);
    if (sqlite3_step(q) != SQLITE_DONE) goto sql;
    sqlite3_finalize(q);
    if ((st = prep(r, "INSERT OR IGNORE INTO blobs(digest, size) VALUES(?1, ?2)", &q))) goto fail;
    bind_text(q, 1, digest);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)size);
    if (sqlite3_step(q) != SQLITE_DONE) goto sql;
    sqlite3_finalize(q);
    if ((st = prep(r,
                   "INSERT INTO versions(name, version, digest, size, added, format, arch, variant, nc, names, "
                   "parameters, imgsz, scenario, record) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
                   "?13, ?14)",
                   &q)))
        goto fail;
    json_object *names = json_object_object_get(desc, "names");
    json_object *meta = json_object_object_get(desc, "metadata");
    bind_text(q, 1, name);
    sqlite3_bind_int(q, 2, version);
    bind_text(q, 3, digest);
    sqlite3_bind_int64(q, 4, (sqlite3_int64)size);
    bind_text(q, 5, now);
    bind_text(q, 6, jstr(desc, "format"));
    bind_text(q, 7, jstr(desc, "architecture"));
    bind_text(q, 8, jstr(desc, "variant"));
    sqlite3_bind_int(q, 9, json_object_get_int(json_object_object_get(desc, "nc")));
    bind_text(q, 10, names ? json_object_to_json_string_ext(names, JSON_C_TO_STRING_PLAIN) : "[]");
    sqlite3_bind_int64(q, 11, json_object_get_int64(json_object_object_get(desc, "parameters")));
    sqlite3_bind_int(q, 12, json_object_get_int(json_object_object_get(desc, "imgsz")));
    bind_text(q, 13, s->scenario);
    bind_text(q, 14, meta ? json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PLAIN) : "{}");
    if (sqlite3_step(q) != SQLITE_DONE) goto sql;
    sqlite3_finalize(q);
    sqlite3_int64 id = sqlite3_last_insert_rowid(r->db);
    if ((st = prep(r, "INSERT INTO metrics(version_id, key, value) VALUES(?1, ?2, ?3)", &q))) goto fail;
    for (int i = 0; i < s->n_metrics; i++) {
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, id);
        bind_text(q, 2, s->keys[i]);
        sqlite3_bind_double(q, 3, s->values[i]);
        if (sqlite3_step(q) != SQLITE_DONE) goto sql;
    }
    sqlite3_finalize(q);
    if ((st = prep(r, "INSERT OR IGNORE INTO tags(version_id, tag) VALUES(?1, ?2)", &q))) goto fail;
    for (int i = 0; i < s->n_tags; i++) {
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, id);
        bind_text(q, 2, s->tags[i]);
        if (sqlite3_step(q) != SQLITE_DONE) goto sql;
    }
    sqlite3_finalize(q);
    q = NULL;
    if ((st = commit(r))) return st;
    *version_out = version;
    return HY_OK;
sql:
    st = sqlfail(r, name);
fail:
    sqlite3_finalize(q);
    rollback(r);
    return st;
}

/* Validates name / version / p before any file work. */
static hy_status check_params(hy_registry *r, const hy_registry_add_params *p) {
    if (!p || !p->name) return hy__error(HY_ERR_INVALID_ARG, "registry %s: add: a model name is required", r->dir);
    if (!hy__registry_name_ok(p->name))
        return hy__error(HY_ERR_INVALID_ARG,
                         "registry %s: bad model name \"%.200s\" (letters, digits, '.', '_', '-', at most 63 bytes, "
                         "starting with a letter or digit)",
                         r->dir, p->name);
    if (p->version < 0 || p->version > 999999999)
        return hy__error(HY_ERR_INVALID_ARG, "registry %s: version %d (1 to 999999999, or 0 for the next)", r->dir,
                         p->version);
    return HY_OK;
}

/* Blob at tmp_path (hash digest, size bytes) described by desc: into the store and catalogue. */
static hy_status admit(hy_registry *r, const char *tmp_path, const char *digest, uint64_t size, json_object *desc,
                       json_object *config, const hy_registry_add_params *p, int reuse, int *version_out) {
    add_spec s;
    memset(&s, 0, sizeof s);
    int nomem = 0;
    hy_status st = spec_fill(r, p, config, &s, &nomem);
    if (!st) {
        add_spec imported;
        memset(&imported, 0, sizeof imported);
        /* file metrics first; the spec's (caller's) override them */
        json_object *meta = json_object_object_get(desc, "metadata");
        if (meta) import_metrics(r, tmp_path, meta, &imported, &nomem);
        for (int i = 0; i < s.n_metrics; i++)
            if (spec_metric(&imported, s.keys[i], s.values[i], &nomem)) {
                /* the caller's win over imported ones: drop the last imported */
                for (int j = imported.n_metrics - 1; j >= 0; j--) {
                    int users = 0;
                    for (int k = 0; k < s.n_metrics; k++) users |= strcmp(s.keys[k], imported.keys[j]) == 0;
                    if (users) continue;
                    hy__free(imported.keys[j]);
                    imported.keys[j] = imported.keys[--imported.n_metrics];
                    imported.values[j] = imported.values[imported.n_metrics];
                    break;
                }
                spec_metric(&imported, s.keys[i], s.values[i], &nomem);
            }
        for (int i = 0; i < s.n_metrics; i++) hy__free(s.keys[i]);
        memcpy(s.keys, imported.keys, sizeof s.keys);
        memcpy(s.values, imported.values, sizeof s.values);
        s.n_metrics = imported.n_metrics;
    }
    if (!st && nomem) st = hy__error(HY_ERR_NOMEM, "registry %s: out of memory", r->dir);
    if (!st && !(st = hy__registry_lock(r, 0))) {
        st = hy__registry_blob_commit(r, tmp_path, digest);
        if (!st) st = insert_entry(r, p->name, p->version, digest, size, desc, &s, reuse, version_out);
        hy__registry_unlock(r);
    }
    unlink(tmp_path); /* gone already unless something failed */
    spec_free(&s);
    return st;
}


hy_status hy_registry_add(hy_registry *r, const char *file, const hy_registry_add_params *p, int *version_out) {
    if (!r || !file) return hy__error(HY_ERR_INVALID_ARG, "hy_registry_add: registry and file are required");
    hy_status st = check_params(r, p);
    if (st) return st;
    json_object *desc = NULL;
    if ((st = inspect_model(r, file, &desc))) return st;
    int fd = -1, v = 0;
    char *tmp = NULL, hex[65];
    uint64_t size = 0;
    if ((st = hy__registry_tmp_open(r, "add", &fd, &tmp))) goto done;
    if ((st = hy__registry_copy_hash(file, fd, tmp, hex, &size))) {
        unlink(tmp);
        goto done;
    }
    if (strcmp(hex, jstr(desc, "sha256")) != 0) {
        unlink(tmp);
        st = hy__error(HY_ERR_BUSY, "registry %s: %s changed while it was being added (sha256 %s, then %s)", r->dir,
                       file, jstr(desc, "sha256"), hex);
        goto done;
    }
    st = admit(r, tmp, hex, size, desc, NULL, p, 0, &v);
    if (st) hy__error_prefix(st, "%s", file);
done:
    if (fd >= 0) close(fd);
    hy__free(tmp);
    json_object_put(desc);
    if (!st && version_out) *version_out = v;
    return st;
}

hy_status hy__registry_add_blob(hy_registry *r, const char *tmp_path, const char *digest_hex,
                                const char *config_json, const hy_registry_add_params *p, int reuse,
                                int *version_out) {
    json_object *desc = NULL, *config = NULL;
    hy_status st = HY_OK;
    if (!r || !tmp_path || !digest_hex || !hy__registry_is_hex64(digest_hex)) {
        st = hy__error(HY_ERR_INVALID_ARG, "hy__registry_add_blob: registry, temp file and digest are required");
        goto done;
    }
    if ((st = check_params(r, p))) goto done;
    if (config_json && !(config = json_parse(config_json, CONFIG_JSON_MAX))) {
        st = hy__error(HY_ERR_FORMAT, "registry %s: the pulled entry is not JSON of at most %zu bytes", r->dir,
                       CONFIG_JSON_MAX);
        goto done;
    }
    if ((st = inspect_model(r, tmp_path, &desc))) goto done;
    if (strcmp(jstr(desc, "sha256"), digest_hex) != 0) {
        st = hy__error(HY_ERR_FORMAT, "registry %s: %s: sha256 %s, expected %s", r->dir, tmp_path,
                       jstr(desc, "sha256"), digest_hex);
        goto done;
    }
    struct stat sb;
    if (stat(tmp_path, &sb) != 0) {
        st = hy__error(HY_ERR_IO, "%s: %s", tmp_path, strerror(errno));
        goto done;
    }
    int v = 0;
    st = admit(r, tmp_path, digest_hex, (uint64_t)sb.st_size, desc, config, p, reuse, &v);
    if (!st && version_out) *version_out = v;
done:
    if (st) unlink(tmp_path);
    json_object_put(desc);
    json_object_put(config);
    return st;
}

hy_status hy__registry_entry_for_push(hy_registry *r, const char *refs, char **blob_path, char **digest_hex,
                                      char **config_json) {
    sqlite3_int64 id;
    hy_status st = ref_find(r, refs, &id, NULL, NULL);
    json_object *o = NULL;
    if (st || (st = entry_json(r, id, 1, 0, &o))) return st;
    const char *dg = json_object_get_string(json_object_object_get(o, "digest")) + 7; /* past "sha256:" */
    char *b = hy__registry_blob_path(r, dg), *d = hy__strdup(dg), *c = json_dup(o);
    json_object_put(o);
    if (!b || !d || !c) {
        hy__free(b);
        hy__free(d);
        hy__free(c);
        return hy__error(HY_ERR_NOMEM, "registry %s: out of memory", r->dir);
    }
    *blob_path = b;
    *digest_hex = d;
    *config_json = c;
    return HY_OK;
}

// --- alias / bind / rm ---

static hy_status version_exists(hy_registry *r, const char *name, int version) {
    sqlite3_stmt *q = NULL;
    hy_status st = prep(r, "SELECT 1 FROM versions WHERE name = ?1 AND version = ?2", &q);
    if (st) return st;
    bind_text(q, 1, name);
    sqlite3_bind_int(q, 2, version);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc == SQLITE_ROW) return HY_OK;
    if (rc == SQLITE_DONE) return hy__error(HY_ERR_NOT_FOUND, "registry %s: no version %s@%d", r->dir, name, version);
    return sqlfail(r, name);
}

/* One statement with (a, b, c) bound as text, int, text in one write transaction after a
 * check that name@version exists. */
static hy_status write_pointer(hy_registry *r, const char *sql, const char *t1, const char *name, int version) {
    hy_status st = begin(r);
    if (st) return st;
    sqlite3_stmt *q = NULL;
    if ((st = version_exists(r, name, version)) || (st = prep(r, sql, &q))) goto fail;
    bind_text(q, 1, t1);
    bind_text(q, 2, name);
    sqlite3_bind_int(q, 3, version);
    if (sqlite3_step(q) != SQLITE_DONE) {
        st = sqlfail(r, t1);
        goto fail;
    }
    sqlite3_finalize(q);
    return commit(r);
fail:
    sqlite3_finalize(q);
    rollback(r);
    return st;
}

hy_status hy_registry_alias(hy_registry *r, const char *name, int version, const char *alias) {
    if (!r) return hy__error(HY_ERR_INVALID_ARG, "hy_registry_alias: registry is NULL");
    if (!hy__registry_name_ok(name))
        return hy__error(HY_ERR_INVALID_ARG, "registry %s: bad model name \"%.200s\"", r->dir, name ? name : "");
    if (!alias || !alias_ok(alias))
        return hy__error(HY_ERR_INVALID_ARG,
                         "registry %s: bad alias \"%.200s\" (as a name, and not all digits)", r->dir,
                         alias ? alias : "");
    return write_pointer(r, "INSERT INTO aliases(alias, name, version) VALUES(?1, ?2, ?3) "
                            "ON CONFLICT(name, alias) DO UPDATE SET version = excluded.version",
                         alias, name, version);
}

hy_status hy_registry_bind(hy_registry *r, const char *project, const char *name, int version) {
    if (!r) return hy__error(HY_ERR_INVALID_ARG, "hy_registry_bind: registry is NULL");
    if (!hy__registry_name_ok(project))
        return hy__error(HY_ERR_INVALID_ARG, "registry %s: bad project name \"%.200s\"", r->dir,
                         project ? project : "");
    if (!hy__registry_name_ok(name))
        return hy__error(HY_ERR_INVALID_ARG, "registry %s: bad model name \"%.200s\"", r->dir, name ? name : "");
    return write_pointer(r, "INSERT INTO bindings(project, name, version) VALUES(?1, ?2, ?3) "
                            "ON CONFLICT(project) DO UPDATE SET name = excluded.name, version = excluded.version",
                         project, name, version);
}

hy_status hy_registry_bindings(hy_registry *r, char **json) {
    if (!r || !json) return hy__error(HY_ERR_INVALID_ARG, "hy_registry_bindings: registry and json are required");
    sqlite3_stmt *q = NULL;
    hy_status st = prep(r,
                        "SELECT b.project, b.name, b.version, v.digest FROM bindings b JOIN versions v "
                        "ON v.name = b.name AND v.version = b.version ORDER BY b.project",
                        &q);
    if (st) return st;
    json_object *a = json_object_new_array();
    int rc;
    while (a && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        json_object *e = json_object_new_object();
        char dg[72];
        snprintf(dg, sizeof dg, "sha256:%s", (const char *)sqlite3_column_text(q, 3));
        json_object_object_add(e, "project", col_text(q, 0));
        json_object_object_add(e, "name", col_text(q, 1));
        json_object_object_add(e, "version", json_object_new_int(sqlite3_column_int(q, 2)));
        json_object_object_add(e, "digest", json_object_new_string(dg));
        json_object_array_add(a, e);
    }
    if (!a) st = hy__error(HY_ERR_NOMEM, "registry %s: out of memory", r->dir);
    else if (rc != SQLITE_DONE) st = sqlfail(r, "cannot read the bindings");
    sqlite3_finalize(q);
    char *s = st ? NULL : json_dup(a);
    json_object_put(a);
    if (!st && !s) st = hy__error(HY_ERR_NOMEM, "registry %s: out of memory", r->dir);
    if (!st) *json = s;
    return st;
}

hy_status hy_registry_rm(hy_registry *r, const char *name, int version, int force) {
    if (!r) return hy__error(HY_ERR_INVALID_ARG, "hy_registry_rm: registry is NULL");
    if (!hy__registry_name_ok(name))
        return hy__error(HY_ERR_INVALID_ARG, "registry %s: bad model name \"%.200s\"", r->dir, name ? name : "");
    hy_status st = begin(r);
    if (st) return st;
    sqlite3_stmt *q = NULL;
    if ((st = version_exists(r, name, version))) goto fail;
    if (!force) { /* the first alias or binding that points here */
        if ((st = prep(r,
                       "SELECT 'alias', alias FROM aliases WHERE name = ?1 AND version = ?2 UNION ALL "
                       "SELECT 'project', project FROM bindings WHERE name = ?1 AND version = ?2",
                       &q)))
            goto fail;
        bind_text(q, 1, name);
        sqlite3_bind_int(q, 2, version);
        int rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            st = hy__error(HY_ERR_BUSY, "registry %s: %s@%d is in use: %s %s points at it (remove that first, or force)",
                           r->dir, name, version, sqlite3_column_text(q, 0), sqlite3_column_text(q, 1));
            goto fail;
        }
        if (rc != SQLITE_DONE) goto sql;
        sqlite3_finalize(q);
        q = NULL;
    }
    static const char *const del[] = {
        "DELETE FROM aliases WHERE name = ?1 AND version = ?2",
        "DELETE FROM bindings WHERE name = ?1 AND version = ?2",
        "DELETE FROM versions WHERE name = ?1 AND version = ?2", /* metrics, tags: cascade */
    };
    for (size_t i = 0; i < HY_ARRAY_LEN(del); i++) {
        if ((st = prep(r, del[i], &q))) goto fail;
        bind_text(q, 1, name);
        sqlite3_bind_int(q, 2, version);
        if (sqlite3_step(q) != SQLITE_DONE) goto sql;
        sqlite3_finalize(q);
        q = NULL;
    }
    return commit(r);
sql:
    st = sqlfail(r, name);
fail:
    sqlite3_finalize(q);
    rollback(r);
    return st;
}

// --- gc / verify / export ---

/* Calls fn(r, subdir_path, file_name, user) for every regular file in DIR/blobs/sha256/xx/. */
typedef hy_status (*blob_visit_fn)(hy_registry *r, const char *path, const char *name, void *user);
static hy_status each_blob_file(hy_registry *r, blob_visit_fn fn, void *user) {
    char root[PATH_MAX];
    snprintf(root, sizeof root, "%s/blobs/sha256", r->dir);
    DIR *d = opendir(root);
    if (!d) return errno == ENOENT ? HY_OK : hy__error(HY_ERR_IO, "%s: %s", root, strerror(errno));
    hy_status st = HY_OK;
    struct dirent *e;
    while (!st && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char sub[PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s/%s", root, e->d_name) >= (int)sizeof sub) continue;
        DIR *d2 = opendir(sub);
        if (!d2) {
            st = fn(r, sub, e->d_name, user); /* a stray file at the prefix level */
            continue;
        }
        struct dirent *f;
        while (!st && (f = readdir(d2))) {
            if (f->d_name[0] == '.' && (!f->d_name[1] || (f->d_name[1] == '.' && !f->d_name[2]))) continue;
            char p[PATH_MAX];
            if (snprintf(p, sizeof p, "%s/%s", sub, f->d_name) >= (int)sizeof p) continue;
            /* a well-placed name is <64 hex> under its first two characters */
            const char *nm = strlen(e->d_name) == 2 && strncmp(f->d_name, e->d_name, 2) == 0 ? f->d_name : "";
            st = fn(r, p, nm, user);
        }
        closedir(d2);
    }
    closedir(d);
    return st;
}

/* 1 when digest is in the blobs table, 0 when not, -1 on a database error. */
static int blob_known(hy_registry *r, const char *digest) {
    sqlite3_stmt *q = NULL;
    if (prep(r, "SELECT 1 FROM blobs WHERE digest = ?1", &q)) return -1;
    bind_text(q, 1, digest);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

typedef struct gc_ctx {
    size_t removed;
    uint64_t bytes;
} gc_ctx;

static hy_status gc_file(hy_registry *r, const char *path, const char *name, void *user) {
    gc_ctx *g = user;
    if (!hy__registry_is_hex64(name)) return HY_OK; /* not ours: verify reports it, gc leaves it */
    int k = blob_known(r, name);
    if (k < 0) return sqlfail(r, "gc");
    if (k) return HY_OK;
    struct stat sb;
    if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) && unlink(path) == 0) {
        g->removed++;
        g->bytes += (uint64_t)sb.st_size;
    }
    return HY_OK;
}

hy_status hy_registry_gc(hy_registry *r, size_t *blobs_removed, uint64_t *bytes_freed) {
    if (!r) return hy__error(HY_ERR_INVALID_ARG, "hy_registry_gc: registry is NULL");
    hy_status st = hy__registry_lock(r, 1); /* no add is between placing a blob and its row */
    if (st) return st;
    gc_ctx g = {0};
    sqlite3_stmt *q = NULL;
    /* blob rows nothing references; their files then go with the unknown ones below */
    if ((st = begin(r))) goto done;
    if ((st = prep(r, "DELETE FROM blobs WHERE digest NOT IN (SELECT digest FROM versions)", &q))) {
        rollback(r);
        goto done;
    }
    if (sqlite3_step(q) != SQLITE_DONE) {
        st = sqlfail(r, "gc");
        sqlite3_finalize(q);
        rollback(r);
        goto done;
    }
    sqlite3_finalize(q);
    if ((st = commit(r))) goto done;
    if ((st = each_blob_file(r, gc_file, &g))) goto done;
    /* temp files whose writer has gone (its flock is released with it) */
    char tdir[PATH_MAX];
    snprintf(tdir, sizeof tdir, "%s/tmp", r->dir);
    DIR *d = opendir(tdir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s/%s", tdir, e->d_name) >= (int)sizeof p) continue;
        int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) continue;
        struct stat sb;
        if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0 && unlink(p) == 0) {
            g.removed++;
            g.bytes += (uint64_t)sb.st_size;
        }
        close(fd);
    }
    if (d) closedir(d);
done:
    hy__registry_unlock(r);
    if (!st) {
        if (blobs_removed) *blobs_removed = g.removed;
        if (bytes_freed) *bytes_freed = g.bytes;
    }
    return st;
}

typedef struct verify_ctx {
    size_t checked, bad;
    hy_registry_report_fn report;
    void *user;
    char first[PATH_MAX + 256];
} verify_ctx;

static void problem(verify_ctx *v, const char *what, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void problem(verify_ctx *v, const char *what, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!v->bad++) snprintf(v->first, sizeof v->first, "%s: %s", what, msg);
    if (v->report) v->report(what, msg, v->user);
}

/* Files in the store that the catalogue does not list. */
static hy_status verify_extra(hy_registry *r, const char *path, const char *name, void *user) {
    verify_ctx *v = user;
    if (!hy__registry_is_hex64(name)) {
        problem(v, path, "unexpected file in the blob store");
        return HY_OK;
    }
    int k = blob_known(r, name);
    if (k < 0) return sqlfail(r, "verify");
    if (k) return HY_OK;
    char hex[65];
    uint64_t size;
    hy_status st = hy__registry_hash_file(path, hex, &size);
    v->checked++;
    if (st) problem(v, path, "unreadable: %s", hy_last_error());
    else if (strcmp(hex, name)) problem(v, path, "content sha256 %s does not match its name", hex);
    else if (v->report) /* left by an interrupted add: harmless, not a mismatch */
        v->report(path, "not in the database (left by an interrupted add or a removal; gc removes it)", v->user);
    return HY_OK;
}

hy_status hy_registry_verify(hy_registry *r, size_t *n_checked, size_t *n_bad, hy_registry_report_fn report,
                             void *user) {
    if (!r) return hy__error(HY_ERR_INVALID_ARG, "hy_registry_verify: registry is NULL");
    verify_ctx v = {.report = report, .user = user};
    sqlite3_stmt *q = NULL;
    hy_status st = prep(r, "SELECT digest, size FROM blobs ORDER BY digest", &q);
    if (st) return st;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        char digest[65], hex[65];
        snprintf(digest, sizeof digest, "%s", (const char *)sqlite3_column_text(q, 0));
        uint64_t want = (uint64_t)sqlite3_column_int64(q, 1), size = 0;
        char *path = hy__registry_blob_path(r, digest);
        if (!path) {
            st = hy__error(HY_ERR_NOMEM, "registry %s: out of memory", r->dir);
            break;
        }
        v.checked++;
        hy_status hs = hy__registry_hash_file(path, hex, &size);
        if (hs == HY_ERR_NOT_FOUND) problem(&v, path, "missing (the database lists sha256:%s)", digest);
        else if (hs) problem(&v, path, "unreadable: %s", hy_last_error());
        else if (strcmp(hex, digest)) problem(&v, path, "corrupt: content sha256 %s, name and database %s", hex, digest);
        else if (size != want)
            problem(&v, path, "size %llu, the database says %llu", (unsigned long long)size, (unsigned long long)want);
        hy__free(path);
    }
    if (!st && rc != SQLITE_DONE) st = sqlfail(r, "verify");
    sqlite3_finalize(q);
    if (!st) st = each_blob_file(r, verify_extra, &v);
    if (st) return st;
    if (n_checked) *n_checked = v.checked;
    if (n_bad) *n_bad = v.bad;
    if (v.bad) return hy__error(HY_ERR_FORMAT, "registry %s: %zu bad blob(s); first: %s", r->dir, v.bad, v.first);
    return HY_OK;
}

hy_status hy_registry_export(hy_registry *r, const char *refs, const char *out, int force) {
    if (!r || !out) return hy__error(HY_ERR_INVALID_ARG, "hy_registry_export: registry and out are required");
    char *blob = NULL, *digest = NULL, *cfg = NULL;
    hy_status st = hy__registry_entry_for_push(r, refs, &blob, &digest, &cfg);
    if (st) return st;
    hy__free(cfg);
    struct stat sb;
    char *tmp = NULL;
    int fd = -1;
    if (!force && lstat(out, &sb) == 0) {
        st = hy__error(HY_ERR_BUSY, "%s exists (export %s): not overwritten without force", out, refs);
        goto done;
    }
    size_t n = strlen(out) + 48;
    if (!(tmp = hy__malloc(n))) {
        st = hy__error(HY_ERR_NOMEM, "%s: out of memory", out);
        goto done;
    }
    snprintf(tmp, n, "%s.tmp-%ld", out, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        st = hy__error(HY_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        goto done;
    }
    char hex[65];
    uint64_t size;
    if ((st = hy__registry_copy_hash(blob, fd, tmp, hex, &size))) goto fail;
    if (strcmp(hex, digest)) {
        st = hy__error(HY_ERR_FORMAT, "registry %s: %s: blob %s is corrupt (sha256 %s); run verify", r->dir, refs,
                       blob, hex);
        goto fail;
    }
    if (fsync(fd) != 0) {
        st = hy__error(HY_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
        goto fail;
    }
    /* without force, link() refuses an out created meanwhile; with force, rename replaces it */
    if (force ? rename(tmp, out) != 0 : link(tmp, out) != 0) {
        st = hy__error(errno == EEXIST ? HY_ERR_BUSY : HY_ERR_IO, "%s: cannot write: %s", out, strerror(errno));
        goto fail;
    }
    if (!force) unlink(tmp);
    goto done;
fail:
    unlink(tmp);
done:
    if (fd >= 0) close(fd);
    hy__free(tmp);
    hy__free(blob);
    hy__free(digest);
    return st;
}

hy_status hy_registry_resolve_path(const char *arg, const char *dir, char **path_out) {
    if (!arg || !path_out) return hy__error(HY_ERR_INVALID_ARG, "hy_registry_resolve_path: arg and path_out are required");
    static const char pre[] = "registry:";
    if (strncmp(arg, pre, sizeof pre - 1) != 0) {
        char *s = hy__strdup(arg);
        if (!s) return hy__error(HY_ERR_NOMEM, "%s: out of memory", arg);
        *path_out = s;
        return HY_OK;
    }
    hy_registry *r = NULL;
    hy_status st = hy_registry_open(dir, 0, &r);
    if (st) return hy__error_prefix(st, "%s", arg);
    st = hy_registry_resolve(r, arg + sizeof pre - 1, path_out, NULL);
    hy_registry_close(r);
    return st;
}
