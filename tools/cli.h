/* hotyolo command-line tool: shared declarations for the files in tools/.
 * Only tools/ prints or exits. It uses the public API (hotyolo.h and include/hotyolo/) and, where the
 * CLI and the server must agree byte for byte, internal model-layer helpers (model/result_json.h;
 * val.c reads model_impl.h); never a backend (tests/cli/test_layers.sh). */
#ifndef HY_CLI_H
#define HY_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hotyolo.h"

/* Exit codes of every subcommand. */
enum { HY_CLI_OK = 0, HY_CLI_RUNTIME = 1, HY_CLI_USAGE = 2, HY_CLI_INTERRUPTED = 130 };

/* Subcommands: argv[0] is the subcommand name; return an exit code. */
int hy_cli_detect(int argc, char **argv);
int hy_cli_inspect(int argc, char **argv);
int hy_cli_convert(int argc, char **argv);
int hy_cli_export(int argc, char **argv);
int hy_cli_verify(int argc, char **argv);
int hy_cli_bench(int argc, char **argv);
int hy_cli_val(int argc, char **argv);
int hy_cli_train(int argc, char **argv);
int hy_cli_serve(int argc, char **argv);
int hy_cli_registry(int argc, char **argv);
int hy_cli_cache(int argc, char **argv);

/* Prints "hotyolo <cmd>: error: <fmt>\n" to stderr. */
void hy_cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- option parsing (cli_util.c) ---------------------------------------------------- */

/* One option of a subcommand: "--name" (and "-x"), with or without a value. */
typedef struct hy_cli_opt {
    const char *name, *short_name; /* short_name may be NULL */
    int id, has_value;
} hy_cli_opt;

/* Classifies argv[*i]: returns the matched table index (its value, for has_value options,
 * in *val: from "--name=value" or the next argument, *i then advanced), -2 for a positional
 * argument (a lone "-" and everything after "--" too), -3 for "--" itself (sets
 * *positional_only), or -1 on a usage error, already printed naming the option. */
int hy_cli_next_opt(const char *cmd, const hy_cli_opt *table, size_t n, int argc, char **argv,
                    int *i, int *positional_only, const char **val);

/* Float option value in [lo, hi]; 0, or -1 with the error printed naming opt. */
int hy_cli_parse_float(const char *cmd, const char *opt, const char *s, float lo, float hi, float *out);
/* --device NAME: one of the forms of hotyolo/device.h (checked by hy_device_check, so a typo
 * is a usage error before any model is loaded; "" refused); 0, or -1 with the error printed. */
int hy_cli_parse_device(const char *cmd, const char *opt, const char *s, const char **out);
#define HY_CLI_DEVICE_FORMS "cpu, ref, cuda, cuda:N, N (a GPU number) or auto"
/* m's device for a "device X" report: "cpu", or "cpu (cuda:0 requested: fallback)" when the
 * device asked for is not the one running it. Returns buf. */
const char *hy_cli_device_desc(const hy_model *m, char *buf, size_t cap);
/* After a load: when m fell back to cpu, prints on stderr "hotyolo CMD: warning: device
 * cuda:0: <why>; running on cpu" (nothing with quiet, nor for "auto": its choice of cpu is
 * no problem; the library's info log says it). */
void hy_cli_warn_fallback(const char *cmd, const hy_model *m, int quiet);
/* The same from the three strings (a training run's hy_train_info). */
void hy_cli_warn_device(const char *cmd, const char *requested, const char *device, const char *why, int quiet);
/* An output path a command may write: `in` must exist; `out` must not be `in` itself (usage
 * error) nor a directory, and an existing `out` is replaced only with force. Returns HY_CLI_OK
 * or the exit code, the error printed. */
int hy_cli_check_out(const char *cmd, const char *in, const char *out, int force);
/* mkdir -p dir for option opt, then checks it is writable; 0, or -1 with the error printed
 * as "OPT DIR: <strerror text> (<the part at fault>)" (a path part that is a regular file is
 * refused: nothing the user has is touched). */
int hy_cli_make_dirs(const char *cmd, const char *opt, const char *dir);
/* Reads a whole file (pipes too) into a malloc'd buffer; 0, or -1 (errno from the failure). */
int hy_cli_read_file(const char *path, uint8_t **buf, size_t *len);

/* Integer option value in [lo, hi]; 0, or -1 with the error printed naming opt. */
int hy_cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, int *out);

/* Repeated --map OLD=NEW prefix renames, in the shape hy_model_params wants. */
typedef struct hy_cli_maps {
    char **from, **to; /* n malloc'd strings each */
    int n;
} hy_cli_maps;
/* Parses "OLD=NEW" (split at the first '='; OLD non-empty, NEW may be empty) and appends
 * it; 0, or -1 with the usage error printed. */
int hy_cli_maps_add(const char *cmd, hy_cli_maps *m, const char *arg);
void hy_cli_maps_free(hy_cli_maps *m);
/* Points p's map_from/map_to/n_map at m (borrowed: m must outlive the use of p). */
void hy_cli_maps_apply(const hy_cli_maps *m, hy_model_params *p);

/* ---- output helpers (cli_util.c) ---------------------------------------------------- */

/* Writes s on one line: control characters and DEL escaped (\n, \t, \xHH) so that text
 * from a file cannot break the layout or drive the terminal. */
void hy_cli_put_escaped(FILE *f, const char *s);
/* 3157200 -> "3,157,200" into buf (cap >= 32). Returns buf. */
const char *hy_cli_thousands(long long v, char *buf, size_t cap);
/* Bytes in decimal units: "812 B", "6.4 kB", "6.4 MB", "1.2 GB". Returns buf. */
const char *hy_cli_size(double bytes, char *buf, size_t cap);
/* hy_inspect(path) parsed with json-c; NULL with the error printed (naming path) on
 * failure. *raw_out (may be NULL) receives the JSON text, freed with hy_free(). */
struct json_object;
struct json_object *hy_cli_inspect_load(const char *cmd, const char *path, int with_tensors,
                                        char **raw_out);
/* Member of a JSON object by key, NULL when absent or o is not an object. */
struct json_object *hy_cli_json_get(struct json_object *o, const char *key);
/* "float16" -> "f16", "float32" -> "f32", "bfloat16" -> "bf16", "int64" -> "i64", ... */
const char *hy_cli_dtype_short(const char *torch_name);
/* Transfer-mode load report of m: "transferred X/Y tensors from MODEL" then one line per
 * initialised and per ignored tensor with its reason. */
void hy_cli_print_load_report(FILE *f, const char *model_path, const hy_model *m);

/* ---- registry references (cli_util.c) ------------------------------------------------- */

/* A MODEL argument of detect, inspect, val: "registry:REF" is resolved in registry_dir (NULL:
 * $HOTYOLO_REGISTRY) to the blob's path (hy_registry_resolve_path); anything else is returned
 * as it is. *path: hy_free. Returns HY_CLI_OK, or the exit code with the error printed
 * (HY_CLI_USAGE: no registry given; HY_CLI_RUNTIME: unknown reference, unreadable registry). */
int hy_cli_model_path(const char *cmd, const char *arg, const char *registry_dir, char **path);

#endif
