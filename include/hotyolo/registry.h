/*
 * hotyolo/registry.h — a model registry: versioned, content-addressed weights with their
 * training record and metrics, in a directory (docs/registry.md):
 *   DIR/registry.db                SQLite (WAL, foreign keys, schema version + migrations)
 *   DIR/blobs/sha256/ab/abcdef...  the weights files, named by their sha256, read-only
 * and fleet-wide over an OCI registry (push / pull, OCI Distribution API over libcurl).
 *
 * References (NAME: letters, digits, '.', '_', '-', at most 63 bytes, starting with a letter
 * or digit):
 *   NAME@3          version 3 of model NAME
 *   NAME@production an alias of NAME (alias names: as NAME, not all digits)
 *   NAME            its latest version
 *   PROJECT         a project's bound version (bind), when no model is called PROJECT
 * Every command that takes a weights path also takes "registry:REF" (hy_registry_resolve_path).
 *
 * Several processes may use one registry at once (SQLite WAL + busy timeout); one hy_registry
 * handle is used by one thread at a time (open a handle per thread). A crash at any
 * point of hy_registry_add leaves either nothing or a complete entry (blob: temp file, fsync,
 * rename; then one transaction); blobs nothing references are removed by hy_registry_gc.
 *
 * Example
 *   hy_registry *r;
 *   if (hy_registry_open("models", 1, &r) != HY_OK) { fprintf(stderr, "%s\n", hy_last_error()); return 1; }
 *   hy_registry_add_params ap = hy_registry_add_default_params();
 *   ap.name = "pcb";
 *   ap.scenario = "line 3 solder joints, 1280x720 camera";
 *   int v;
 *   hy_registry_add(r, "runs/detect/train/weights/best.safetensors", &ap, &v);
 *   hy_registry_alias(r, "pcb", v, "production");
 *   char *path;
 *   hy_registry_resolve(r, "pcb@production", &path, NULL);  // the blob, for hy_model_load
 *   hy_free(path);
 *   hy_registry_close(r);
 */
#ifndef HOTYOLO_REGISTRY_H
#define HOTYOLO_REGISTRY_H

#include "hotyolo.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hy_registry hy_registry;

/* Opens (create 1: creates DIR and the database when absent) the registry in dir; NULL = the
 * HOTYOLO_REGISTRY environment variable. Migrates an older schema; refuses a newer one
 * (HY_ERR_UNSUPPORTED naming both versions). Errors name the directory or file. */
HY_API hy_status hy_registry_open(const char *dir, int create, hy_registry **out);
HY_API void hy_registry_close(hy_registry *r);
HY_API const char *hy_registry_dir(const hy_registry *r);

#define HY_REGISTRY_MAX_METRICS 64
#define HY_REGISTRY_MAX_TAGS 64

typedef struct hy_registry_add_params {
    const char *name;            /* required */
    int version;                 /* 0: the next one (1, 2, ...); else that number (refused
                                    when taken: HY_ERR_BUSY) */
    const char *scenario;        /* intended use, free text (may be NULL) */
    const char *const *metric_keys; /* (n_metrics) e.g. "mAP50" (also imported from the file) */
    const double *metric_values;
    int n_metrics;
    const char *const *tags;     /* (n_tags) free labels */
    int n_tags;
} hy_registry_add_params;
HY_API hy_registry_add_params hy_registry_add_default_params(void);

/* Stores file (any format hy_inspect reads; it must load as a model) as NAME's next version:
 * the blob (reused when the same content is stored already), what the file records
 * (hy_inspect: format, architecture, variant, nc, names, parameters, imgsz, metadata with
 * Ultralytics' train_args / train_metrics / date / version or hotyolo's training record),
 * its metrics and scenario. *version_out (may be NULL) gets the version. Errors:
 * HY_ERR_INVALID_ARG (name, metric), HY_ERR_BUSY (version taken), the file's load error. */
HY_API hy_status hy_registry_add(hy_registry *r, const char *file, const hy_registry_add_params *p, int *version_out);

/* Resolves a reference (above) to the blob's path (*path: hy_free) and, when not NULL, the
 * entry as JSON (*entry_json: hy_free; as hy_registry_show). HY_ERR_NOT_FOUND naming the
 * reference when nothing matches. */
HY_API hy_status hy_registry_resolve(hy_registry *r, const char *ref, char **path, char **entry_json);

/* One entry as JSON (hy_free): name, version, digest ("sha256:..."), size, added (UTC ISO
 * 8601), format, architecture, variant, nc, names, parameters, imgsz, scenario, metrics
 * {k: v}, tags [...], aliases [...], bound_by [projects], record (the file's metadata:
 * train_args, train_metrics, training record keys ...), blob (path). */
HY_API hy_status hy_registry_show(hy_registry *r, const char *ref, char **json);
/* Every model and version (JSON array of entries without "record"), by name then version. */
HY_API hy_status hy_registry_list(hy_registry *r, char **json);

/* Points alias at NAME@version (moves it when it exists). */
HY_API hy_status hy_registry_alias(hy_registry *r, const char *name, int version, const char *alias);
/* Pins project to NAME@version (replaces an earlier binding). */
HY_API hy_status hy_registry_bind(hy_registry *r, const char *project, const char *name, int version);
/* Every binding as JSON: [{"project", "name", "version", "digest"}] (hy_free). */
HY_API hy_status hy_registry_bindings(hy_registry *r, char **json);
/* Removes NAME@version; refused (HY_ERR_BUSY naming the alias or project) while an alias or
 * binding points at it, unless force (which drops those too). The blob stays until gc. */
HY_API hy_status hy_registry_rm(hy_registry *r, const char *name, int version, int force);
/* Deletes blobs no version references (and temporary files of crashed adds). */
HY_API hy_status hy_registry_gc(hy_registry *r, size_t *blobs_removed, uint64_t *bytes_freed);
/* Re-hashes every blob against its name and the database. *n_bad (may be NULL) gets the
 * mismatches; each is reported through report (may be NULL). HY_OK when all match,
 * HY_ERR_FORMAT (naming the first bad blob) otherwise. */
typedef void (*hy_registry_report_fn)(const char *what, const char *problem, void *user);
HY_API hy_status hy_registry_verify(hy_registry *r, size_t *n_checked, size_t *n_bad, hy_registry_report_fn report,
                             void *user);
/* Copies NAME@version's blob to out (temp file + rename; an existing out only with force). */
HY_API hy_status hy_registry_export(hy_registry *r, const char *ref, const char *out, int force);

/* A weights argument as commands take it: "registry:REF" is resolved in dir (NULL:
 * HOTYOLO_REGISTRY; HY_ERR_INVALID_ARG when neither is set) to its blob path; anything else
 * is returned as it is. *path_out: hy_free. */
HY_API hy_status hy_registry_resolve_path(const char *arg, const char *dir, char **path_out);

/* --- OCI distribution (docs/registry.md, "Fleet") -------------------------------------------
 * oci://HOST[:PORT]/REPO[:TAG]  (TAG default "latest"); plain HTTP for 127.0.0.1 / localhost
 * or when insecure is set, else HTTPS. The weights are one layer blob (digest = their
 * sha256), the registry entry (record, metrics, scenario) the config blob, in an OCI image
 * manifest with artifactType "application/vnd.hotyolo.model.v1". */
typedef struct hy_oci_params {
    int insecure;                /* plain HTTP to any host */
    const char *username, *password; /* basic auth (may be NULL) */
    double timeout_s;            /* per request; default 60 */
} hy_oci_params;
HY_API hy_oci_params hy_oci_default_params(void);
HY_API hy_status hy_registry_push(hy_registry *r, const char *ref, const char *oci_url, const hy_oci_params *p);
/* Fetches the manifest, config and blob (the blob's sha256 checked before it is admitted:
 * HY_ERR_FORMAT naming both digests otherwise) and adds it as NAME's next version (or the
 * version holding the same content). *version_out may be NULL. */
HY_API hy_status hy_registry_pull(hy_registry *r, const char *oci_url, const char *name, const hy_oci_params *p,
                           int *version_out);

#ifdef __cplusplus
}
#endif
#endif /* HOTYOLO_REGISTRY_H */
