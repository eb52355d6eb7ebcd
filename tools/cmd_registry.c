/* hotyolo registry [--registry DIR] SUBCOMMAND ...: the model registry (include/hotyolo/registry.h,
 * docs/registry.md): init, add, list, show, alias, bind, bindings, rm, gc, verify, export, push,
 * pull. DIR defaults to $HOTYOLO_REGISTRY. Results on stdout (text, or the library's JSON with
 * --json), errors on stderr. Exit 0 ok, 1 runtime error (including a failed verify), 2 usage. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "hotyolo/registry.h"

#define CMD "registry"
#define N_NAMES_SHOWN 5
#define NAME_MAX_LEN 63

// --- subcommands and options -----------------------------------------------------------

enum {
    O_REGISTRY, O_HELP, O_JSON, O_FORCE, O_NAME, O_VERSION, O_SCENARIO, O_METRIC, O_TAG,
    O_INSECURE, O_USER, O_PASSWORD_ENV, O_COUNT
};
static const hy_cli_opt table[] = {
    {"--registry", NULL, O_REGISTRY, 1}, {"--help", "-h", O_HELP, 0},
    {"--json", NULL, O_JSON, 0},         {"--force", NULL, O_FORCE, 0},
    {"--name", NULL, O_NAME, 1},         {"--version", NULL, O_VERSION, 1},
    {"--scenario", NULL, O_SCENARIO, 1}, {"--metric", NULL, O_METRIC, 1},
    {"--tag", NULL, O_TAG, 1},           {"--insecure", NULL, O_INSECURE, 0},
    {"--user", NULL, O_USER, 1},         {"--password-env", NULL, O_PASSWORD_ENV, 1},
};
#define BIT(o) (1u << (o))
#define OCI_OPTS (BIT(O_INSECURE) | BIT(O_USER) | BIT(O_PASSWORD_ENV))

typedef struct reg_opts {
    const char *dir, *name, *scenario, *user, *password_env;
    int version, force, json, insecure;
    unsigned used;                  /* BIT(option) of each option given */
    const char *metric_keys[HY_REGISTRY_MAX_METRICS];
    double metric_values[HY_REGISTRY_MAX_METRICS];
    int n_metrics;
    const char *tags[HY_REGISTRY_MAX_TAGS];
    int n_tags;
    char **pos;                     /* positional arguments after the subcommand */
    int n_pos;
    /* checked before the registry is opened (check_args) */
    char *nv_name;                  /* the NAME@V argument of alias, bind, rm (malloc'd) */
    int nv_version;
    hy_oci_params oci;              /* push, pull */
} reg_opts;

typedef struct subcommand {
    const char *name;
    int (*fn)(hy_registry *r, const reg_opts *o);
    int n_args;                     /* positional arguments, exactly */
    unsigned opts;                  /* options allowed besides --registry and --help */
    int create;                     /* opens the registry with create = 1 */
    const char *usage, *what;
} subcommand;

static int cmd_init(hy_registry *r, const reg_opts *o);
static int cmd_add(hy_registry *r, const reg_opts *o);
static int cmd_list(hy_registry *r, const reg_opts *o);
static int cmd_show(hy_registry *r, const reg_opts *o);
static int cmd_alias(hy_registry *r, const reg_opts *o);
static int cmd_bind(hy_registry *r, const reg_opts *o);
static int cmd_bindings(hy_registry *r, const reg_opts *o);
static int cmd_rm(hy_registry *r, const reg_opts *o);
static int cmd_gc(hy_registry *r, const reg_opts *o);
static int cmd_verify(hy_registry *r, const reg_opts *o);
static int cmd_export(hy_registry *r, const reg_opts *o);
static int cmd_push(hy_registry *r, const reg_opts *o);
static int cmd_pull(hy_registry *r, const reg_opts *o);

static const subcommand subs[] = {
    {"init", cmd_init, 0, 0, 1, "init", "create the registry directory and database (no-op when present)"},
    {"add", cmd_add, 1, BIT(O_NAME) | BIT(O_VERSION) | BIT(O_SCENARIO) | BIT(O_METRIC) | BIT(O_TAG), 1,
     "add FILE --name NAME [--version V] [--scenario TEXT] [--metric K=V ...] [--tag T ...]",
     "store FILE (any weights file hotyolo loads) as NAME's next version (or V); the same\n"
     "content twice shares one blob; prints NAME@V and the digest (creates the registry\n"
     "when absent, as pull does)"},
    {"list", cmd_list, 0, BIT(O_JSON), 0, "list [--json]", "every model and version"},
    {"show", cmd_show, 1, BIT(O_JSON), 0, "show REF [--json]",
     "one version: digest, model, metrics, scenario, tags, aliases, bindings, training record"},
    {"alias", cmd_alias, 2, 0, 0, "alias NAME@V ALIAS", "point ALIAS (e.g. production) at NAME@V; moves it"},
    {"bind", cmd_bind, 2, 0, 0, "bind PROJECT NAME@V", "pin PROJECT to NAME@V (replaces its binding)"},
    {"bindings", cmd_bindings, 0, BIT(O_JSON), 0, "bindings [--json]", "every project and its version"},
    {"rm", cmd_rm, 1, BIT(O_FORCE), 0, "rm NAME@V [--force]",
     "remove a version; refused while an alias or binding points at it unless --force\n"
     "(which drops those too); the blob stays until gc"},
    {"gc", cmd_gc, 0, 0, 0, "gc", "delete blobs no version references, and leftovers of crashed adds"},
    {"verify", cmd_verify, 0, 0, 0, "verify", "re-hash every blob; each mismatch is printed, exit 1 when any"},
    {"export", cmd_export, 2, BIT(O_FORCE), 0, "export REF OUT [--force]",
     "copy the version's weights to OUT (an existing OUT only with --force)"},
    {"push", cmd_push, 2, OCI_OPTS, 0, "push REF oci://HOST[:PORT]/REPO[:TAG] [OCI options]",
     "upload the version (weights + its record) to an OCI registry"},
    {"pull", cmd_pull, 1, BIT(O_NAME) | OCI_OPTS, 1, "pull oci://HOST[:PORT]/REPO[:TAG] --name NAME [OCI options]",
     "download a model (digest checked) and add it as NAME's next version"},
};
#define N_SUBS (sizeof subs / sizeof subs[0])

static void print_sub(const subcommand *s) {
    printf("  %s\n      ", s->usage);
    for (const char *p = s->what; *p; p++) {
        putchar(*p);
        if (*p == '\n') fputs("      ", stdout);
    }
    putchar('\n');
}

static void help(const subcommand *only) {
    printf("Usage: hotyolo registry [--registry DIR] SUBCOMMAND [ARGS] [options]\n"
           "\n"
           "A model registry in directory DIR: versioned, content-addressed weights\n"
           "(DIR/blobs/sha256/..) with what each file records (model, training arguments\n"
           "and metrics, dataset hash), metrics, scenario, tags, aliases and project\n"
           "bindings in DIR/registry.db (SQLite). Several processes may use it at once.\n"
           "See docs/registry.md.\n"
           "\n");
    printf("Subcommand%s:\n", only ? "" : "s");
    for (size_t i = 0; i < N_SUBS; i++)
        if (!only || only == &subs[i]) print_sub(&subs[i]);
    printf("\n"
           "References (REF): NAME@3 (version 3), NAME@production (an alias), NAME (the\n"
           "latest version), PROJECT (the version bound to it). NAME, ALIAS and PROJECT:\n"
           "letters, digits, '.', '_', '-', at most %d bytes, starting with a letter or\n"
           "digit; an ALIAS is not all digits. detect, inspect, val and serve take\n"
           "registry:REF wherever they take a weights file.\n"
           "\n"
           "Options (a value may also be given as --option=VALUE):\n"
           "  --registry DIR       the registry (default: $HOTYOLO_REGISTRY; one is required)\n"
           "  --name NAME          add, pull: the model's name (required)\n"
           "  --version V          add: this version number, in [1, 2147483647], refused when\n"
           "                       taken (default: the next one)\n"
           "  --scenario TEXT      add: intended use, free text (default: none)\n"
           "  --metric K=V         add: a metric (e.g. mAP50=0.61), repeatable, at most %d\n"
           "                       (the file's own training metrics are imported as well)\n"
           "  --tag T              add: a free label, repeatable, at most %d\n"
           "  --json               list, show, bindings: print the library's JSON\n"
           "  --force              rm: also drop aliases and bindings; export: replace OUT\n"
           "  --insecure           push, pull: plain HTTP to any host (default: HTTPS, except\n"
           "                       127.0.0.1 and localhost)\n"
           "  --user U             push, pull: basic-auth user\n"
           "  --password-env VAR   push, pull: read the password from environment variable VAR\n"
           "  -h, --help           show this help\n"
           "\n"
           "Exit status: 0 ok, 1 runtime error (including a verify that found a bad blob),\n"
           "2 usage error.\n"
           "\n"
           "Example:\n"
           "  export HOTYOLO_REGISTRY=models\n"
           "  hotyolo registry add runs/detect/train/weights/best.safetensors --name pcb \\\n"
           "      --scenario 'line 3 solder joints' --metric mAP50=0.91\n"
           "  hotyolo registry alias pcb@1 production\n"
           "  hotyolo detect registry:pcb@production board.jpg\n",
           NAME_MAX_LEN, HY_REGISTRY_MAX_METRICS, HY_REGISTRY_MAX_TAGS);
}

// --- argument values -------------------------------------------------------------------

/* NAME, ALIAS, PROJECT: [A-Za-z0-9][A-Za-z0-9._-]{0,62}; an alias is not all digits. */
static int valid_name(const char *s, int is_alias) {
    size_t n = strlen(s);
    int digits = 1;
    if (n == 0 || n > NAME_MAX_LEN) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) return 0;
        digits &= c >= '0' && c <= '9';
    }
    return !(is_alias && digits);
}

static int check_name(const char *what, const char *s, int is_alias) {
    if (valid_name(s, is_alias)) return 0;
    hy_cli_error(CMD, "%s '%s' is not valid: letters, digits, '.', '_', '-', at most %d bytes, "
                      "starting with a letter or digit%s", what, s, NAME_MAX_LEN,
                 is_alias ? ", not all digits" : "");
    return -1;
}

/* "NAME@V" with a version number -> name (malloc'd) and version; -1 with the usage error printed. */
static int parse_name_version(const char *s, char **name, int *version) {
    const char *at = strrchr(s, '@');
    if (!at || at == s || !at[1]) {
        hy_cli_error(CMD, "'%s' is not NAME@VERSION (e.g. pcb@3)", s);
        return -1;
    }
    char *n = malloc((size_t)(at - s) + 1);
    if (!n) {
        hy_cli_error(CMD, "out of memory");
        return -1;
    }
    memcpy(n, s, (size_t)(at - s));
    n[at - s] = '\0';
    if (check_name("NAME", n, 0) != 0 ||
        hy_cli_parse_int(CMD, "VERSION", at + 1, 1, 2147483647L, version) != 0) {
        free(n);
        return -1;
    }
    *name = n;
    return 0;
}

static int add_metric(reg_opts *o, const char *kv) {
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv || !eq[1]) {
        hy_cli_error(CMD, "--metric: '%s' is not KEY=VALUE (e.g. mAP50=0.61)", kv);
        return -1;
    }
    if (o->n_metrics == HY_REGISTRY_MAX_METRICS) {
        hy_cli_error(CMD, "--metric: more than %d metrics", HY_REGISTRY_MAX_METRICS);
        return -1;
    }
    char *end;
    errno = 0;
    double v = strtod(eq + 1, &end);
    if (*end || errno == ERANGE || !isfinite(v)) {
        hy_cli_error(CMD, "--metric: '%s' in '%s' is not a finite number", eq + 1, kv);
        return -1;
    }
    size_t klen = (size_t)(eq - kv);
    for (int i = 0; i < o->n_metrics; i++)
        if (strlen(o->metric_keys[i]) == klen && !strncmp(o->metric_keys[i], kv, klen)) {
            hy_cli_error(CMD, "--metric: '%.*s' given twice", (int)klen, kv);
            return -1;
        }
    /* the key is the argument cut at '=': argv strings are writable */
    ((char *)kv)[klen] = '\0';
    o->metric_keys[o->n_metrics] = kv;
    o->metric_values[o->n_metrics++] = v;
    return 0;
}

static int check_oci_url(const char *s) {
    if (!strncmp(s, "oci://", 6) && s[6]) return 0;
    hy_cli_error(CMD, "'%s' is not an oci://HOST[:PORT]/REPO[:TAG] address", s);
    return -1;
}

/* The subcommand's own arguments, before anything is opened or created: NAME@V, ALIAS,
 * PROJECT, oci:// addresses, the password variable. 0, or -1 with the usage error printed. */
static int check_args(const char *sub, reg_opts *o) {
    if (!strcmp(sub, "alias") || !strcmp(sub, "rm")) {
        if (parse_name_version(o->pos[0], &o->nv_name, &o->nv_version)) return -1;
        return !strcmp(sub, "alias") ? check_name("ALIAS", o->pos[1], 1) : 0;
    }
    if (!strcmp(sub, "bind"))
        return check_name("PROJECT", o->pos[0], 0) ? -1
                                                    : parse_name_version(o->pos[1], &o->nv_name, &o->nv_version);
    if (!strcmp(sub, "push") || !strcmp(sub, "pull")) {
        if (check_oci_url(o->pos[!strcmp(sub, "push")])) return -1;
        o->oci = hy_oci_default_params();
        o->oci.insecure = o->insecure;
        o->oci.username = o->user;
        if (o->password_env) {
            o->oci.password = getenv(o->password_env);
            if (!o->oci.password) {
                hy_cli_error(CMD, "--password-env: environment variable '%s' is not set", o->password_env);
                return -1;
            }
        }
    }
    return 0;
}

/* 0 ok, 1 help shown, -1 usage error (printed). *sub: the subcommand (NULL with help). */
static int parse_args(int argc, char **argv, reg_opts *o, const subcommand **sub) {
    int positional_only = 0, want_help = 0;
    const char *sub_name = NULL;
    *sub = NULL;
    for (int i = 1; i < argc; i++) {
        const char *val;
        int k = hy_cli_next_opt(CMD, table, sizeof table / sizeof table[0], argc, argv, &i,
                                &positional_only, &val);
        if (k == -1) return -1;
        if (k == -3) continue;
        if (k == -2) {
            if (!sub_name)
                sub_name = argv[i];
            else
                o->pos[o->n_pos++] = argv[i];
            continue;
        }
        const int id = table[k].id;
        if ((o->used & BIT(id)) && id != O_METRIC && id != O_TAG && id != O_HELP) {
            hy_cli_error(CMD, "option %s given twice", table[k].name);
            return -1;
        }
        o->used |= BIT(id);
        switch (id) {
        case O_REGISTRY:
            if (!*val) {
                hy_cli_error(CMD, "--registry: empty path");
                return -1;
            }
            o->dir = val;
            break;
        case O_HELP: want_help = 1; break;
        case O_JSON: o->json = 1; break;
        case O_FORCE: o->force = 1; break;
        case O_NAME:
            if (check_name("--name", val, 0)) return -1;
            o->name = val;
            break;
        case O_VERSION:
            if (hy_cli_parse_int(CMD, "--version", val, 1, 2147483647L, &o->version)) return -1;
            break;
        case O_SCENARIO: o->scenario = val; break;
        case O_METRIC:
            if (add_metric(o, val)) return -1;
            break;
        case O_TAG:
            if (o->n_tags == HY_REGISTRY_MAX_TAGS) {
                hy_cli_error(CMD, "--tag: more than %d tags", HY_REGISTRY_MAX_TAGS);
                return -1;
            }
            if (!*val) {
                hy_cli_error(CMD, "--tag: empty tag");
                return -1;
            }
            o->tags[o->n_tags++] = val;
            break;
        case O_INSECURE: o->insecure = 1; break;
        case O_USER: o->user = val; break;
        case O_PASSWORD_ENV: o->password_env = val; break;
        }
    }
    if (sub_name) {
        for (size_t s = 0; s < N_SUBS; s++)
            if (!strcmp(sub_name, subs[s].name)) *sub = &subs[s];
        if (!*sub) {
            hy_cli_error(CMD, "unknown subcommand '%s' (see 'hotyolo registry --help')", sub_name);
            return -1;
        }
    }
    if (want_help) {
        help(*sub);
        return 1;
    }
    if (!*sub) {
        hy_cli_error(CMD, "missing SUBCOMMAND (see 'hotyolo registry --help')");
        return -1;
    }
    const subcommand *s = *sub;
    for (int id = 0; id < O_COUNT; id++) {
        if (!(o->used & BIT(id)) || id == O_REGISTRY || id == O_HELP || (s->opts & BIT(id))) continue;
        for (size_t t = 0; t < sizeof table / sizeof table[0]; t++)
            if (table[t].id == id)
                hy_cli_error(CMD, "option %s does not apply to '%s' (see 'hotyolo registry %s --help')",
                             table[t].name, s->name, s->name);
        return -1;
    }
    if (o->n_pos != s->n_args) {
        hy_cli_error(CMD, "%s: %s (usage: hotyolo registry %s)", s->name,
                     o->n_pos < s->n_args ? "missing arguments" : "too many arguments", s->usage);
        return -1;
    }
    if ((s->opts & BIT(O_NAME)) && !o->name) {
        hy_cli_error(CMD, "%s: --name NAME is required (usage: hotyolo registry %s)", s->name, s->usage);
        return -1;
    }
    if (o->password_env && !o->user) {
        hy_cli_error(CMD, "--password-env needs --user");
        return -1;
    }
    if (check_args(s->name, o)) return -1;
    if (!o->dir) o->dir = getenv("HOTYOLO_REGISTRY");
    if (!o->dir || !*o->dir) {
        hy_cli_error(CMD, "no registry: give --registry DIR or set HOTYOLO_REGISTRY");
        return -1;
    }
    return 0;
}

// --- output helpers --------------------------------------------------------------------

/* Prints the library's last error; names `what` unless the message already does. */
static int fail(const char *what) {
    const char *e = hy_last_error();
    if (what && !strstr(e, what))
        hy_cli_error(CMD, "%s: %s", what, e);
    else
        hy_cli_error(CMD, "%s", e);
    return HY_CLI_RUNTIME;
}

static json_object *parse_json(const char *txt) {
    json_object *o = txt ? json_tokener_parse(txt) : NULL;
    if (!o) hy_cli_error(CMD, "the library's answer is not valid JSON");
    return o;
}

static const char *str_of(json_object *o, const char *key) {
    json_object *v = hy_cli_json_get(o, key);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static void put_json_line(const char *txt) {
    fputs(txt, stdout);
    if (!*txt || txt[strlen(txt) - 1] != '\n') putchar('\n');
}

static void label(const char *indent, const char *key) {
    int pad = 14 - (int)strlen(key);
    printf("%s%s:%*s ", indent, key, pad > 0 ? pad : 0, "");
}

/* A scalar on one line: strings bare (escaped), others as compact JSON. */
static void put_value(json_object *v) {
    if (v && json_object_is_type(v, json_type_string)) {
        hy_cli_put_escaped(stdout, json_object_get_string(v));
    } else if (v && json_object_is_type(v, json_type_double)) {
        printf("%.6g", json_object_get_double(v));
    } else {
        hy_cli_put_escaped(stdout, v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                                          JSON_C_TO_STRING_NOSLASHESCAPE)
                                     : "null");
    }
}

/* "a, b, c" of a JSON array of scalars (at most max, then ", ... (n)"); "-" when empty. */
static void put_list(json_object *a, size_t max) {
    size_t n = a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
    if (!n) {
        putchar('-');
        return;
    }
    for (size_t i = 0; i < n && i < max; i++) {
        fputs(i ? ", " : "", stdout);
        put_value(json_object_array_get_idx(a, i));
    }
    if (n > max) printf(", ... (%zu)", n);
}

/* "k=v k=v" of a JSON object; "-" when empty. */
static void put_pairs(json_object *o) {
    int first = 1;
    if (o && json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, k, v) {
            fputs(first ? "" : ", ", stdout);
            hy_cli_put_escaped(stdout, k);
            putchar('=');
            put_value(v);
            first = 0;
        }
    }
    if (first) putchar('-');
}

static void line_str(const char *key, const char *v) {
    if (!v) return;
    label("", key);
    hy_cli_put_escaped(stdout, v);
    putchar('\n');
}

static int finish(void) {
    if (fflush(stdout) != 0 || ferror(stdout)) {
        hy_cli_error(CMD, "error writing to standard output");
        return HY_CLI_RUNTIME;
    }
    return HY_CLI_OK;
}

// --- training record -------------------------------------------------------------------

/* record[key]; a string holding a JSON object or array (safetensors metadata values are
 * strings) is parsed into *owned (json_object_put by the caller). */
static json_object *record_get(json_object *rec, const char *key, json_object **owned) {
    json_object *v = hy_cli_json_get(rec, key);
    *owned = NULL;
    if (v && json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        if (*s == '{' || *s == '[') {
            *owned = json_tokener_parse(s);
            if (*owned) return *owned;
        }
    }
    return v;
}

/* The training record, summarised: args, epochs, the last epoch's metrics, hashes. */
static void print_record(json_object *rec) {
    json_object *own;
    if (!rec || !json_object_is_type(rec, json_type_object) || !json_object_object_length(rec)) return;
    json_object *inner = hy_cli_json_get(rec, "metadata");
    if (inner && json_object_is_type(inner, json_type_object)) rec = inner;
    puts("training record:");

    /* arguments: ours (hotyolo.train.args) or Ultralytics' (train_args) */
    json_object *args = record_get(rec, "hotyolo.train.args", &own);
    json_object *own2 = NULL;
    if (!args) args = record_get(rec, "train_args", &own2);
    if (args && json_object_is_type(args, json_type_object)) {
        static const char *keys[] = {"model", "arch", "data", "epochs", "imgsz", "batch", "freeze", "optimizer",
                                     "lr0", "seed"};
        label("  ", "args");
        int first = 1;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            json_object *v = hy_cli_json_get(args, keys[i]);
            if (!v) continue;
            printf("%s%s ", first ? "" : ", ", keys[i]);
            put_value(v);
            first = 0;
        }
        printf("%s(%d in all)\n", first ? "" : " ", json_object_object_length(args));
    }
    json_object_put(own);
    json_object_put(own2);

    json_object *ep = hy_cli_json_get(rec, "hotyolo.train.epoch");
    if (!ep) ep = hy_cli_json_get(rec, "epoch");
    if (ep) {
        label("  ", "epoch");
        put_value(ep);
        json_object *eps = hy_cli_json_get(rec, "hotyolo.train.epochs");
        if (eps) {
            fputs(" of ", stdout);
            put_value(eps);
        }
        const char *st = str_of(rec, "hotyolo.train.status");
        if (st) {
            fputs(" (", stdout);
            hy_cli_put_escaped(stdout, st);
            putchar(')');
        }
        putchar('\n');
    }

    /* the last epoch's metrics: our per-epoch results, else Ultralytics' train_metrics */
    json_object *res = record_get(rec, "hotyolo.train.results", &own);
    json_object *last = NULL;
    if (res && json_object_is_type(res, json_type_array) && json_object_array_length(res))
        last = json_object_array_get_idx(res, json_object_array_length(res) - 1);
    own2 = NULL;
    if (!last) last = record_get(rec, "train_metrics", &own2);
    if (last && json_object_is_type(last, json_type_object)) {
        label("  ", "metrics");
        int first = 1;
        json_object_object_foreach(last, k, v) {
            int metric = !strncmp(k, "metrics/", 8) || !strcmp(k, "fitness") || !strncmp(k, "val/", 4);
            if (!metric) continue;
            fputs(first ? "" : ", ", stdout);
            hy_cli_put_escaped(stdout, !strncmp(k, "metrics/", 8) ? k + 8 : k);
            putchar(' ');
            put_value(v);
            first = 0;
        }
        json_object *e = hy_cli_json_get(last, "epoch");
        if (e && res) {
            fputs(first ? "(epoch " : " (epoch ", stdout);
            put_value(e);
            putchar(')');
        } else if (first) {
            putchar('-');
        }
        putchar('\n');
    }
    json_object_put(own);
    json_object_put(own2);

    static const struct {
        const char *key, *label;
    } plain[] = {
        {"hotyolo.train.dataset_sha256", "dataset_sha256"}, {"hotyolo.train.data_sha256", "data_sha256"},
        {"hotyolo.source_sha256", "source_sha256"},         {"hotyolo.train.date", "date"},
        {"date", "date"},                                   {"hotyolo.train.version", "version"},
        {"version", "version"},
    };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        json_object *v = hy_cli_json_get(rec, plain[i].key);
        if (!v || (i > 0 && !strcmp(plain[i].label, plain[i - 1].label) &&
                   hy_cli_json_get(rec, plain[i - 1].key)))
            continue;
        label("  ", plain[i].label);
        put_value(v);
        putchar('\n');
    }
}

// --- subcommands -----------------------------------------------------------------------

static int cmd_init(hy_registry *r, const reg_opts *o) {
    (void)o;
    fputs("registry ", stdout);
    hy_cli_put_escaped(stdout, hy_registry_dir(r));
    puts(" ready");
    return finish();
}

/* "NAME@V sha256:..., SIZE" of a just-written version. */
static void print_entry_line(hy_registry *r, const char *verb, const char *name, int version) {
    char ref[NAME_MAX_LEN + 16], size[32];
    snprintf(ref, sizeof ref, "%s@%d", name, version);
    char *js = NULL;
    json_object *e = hy_registry_show(r, ref, &js) == HY_OK ? json_tokener_parse(js) : NULL;
    const char *digest = str_of(e, "digest");
    json_object *sz = hy_cli_json_get(e, "size");
    printf("%s %s %s", verb, ref, digest ? digest : "sha256:?");
    if (sz) printf(" (%s)", hy_cli_size((double)json_object_get_int64(sz), size, sizeof size));
    putchar('\n');
    json_object_put(e);
    hy_free(js);
}

static int cmd_add(hy_registry *r, const reg_opts *o) {
    hy_registry_add_params ap = hy_registry_add_default_params();
    ap.name = o->name;
    ap.version = o->version;
    ap.scenario = o->scenario;
    ap.metric_keys = o->metric_keys;
    ap.metric_values = o->metric_values;
    ap.n_metrics = o->n_metrics;
    ap.tags = o->tags;
    ap.n_tags = o->n_tags;
    int v = 0;
    if (hy_registry_add(r, o->pos[0], &ap, &v) != HY_OK) return fail(o->pos[0]);
    print_entry_line(r, "added", o->name, v);
    return finish();
}

/* The library's JSON answer js (freed here): with --json printed as it is (NULL returned, *rc
 * the exit status), else parsed for the text view (NULL with *rc set when it does not parse). */
static json_object *json_or_print(char *js, const reg_opts *o, int *rc) {
    json_object *j = NULL;
    if (o->json) {
        put_json_line(js);
        *rc = finish();
    } else if (!(j = parse_json(js))) {
        *rc = HY_CLI_RUNTIME;
    }
    hy_free(js);
    return j;
}

static int cmd_list(hy_registry *r, const reg_opts *o) {
    char *js = NULL;
    if (hy_registry_list(r, &js) != HY_OK) return fail(NULL);
    int rc;
    json_object *a = json_or_print(js, o, &rc);
    if (!a) return rc;
    size_t n = json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
    if (!n) {
        fputs("no models in ", stdout);
        hy_cli_put_escaped(stdout, o->dir);
        putchar('\n');
        json_object_put(a);
        return finish();
    }
    int w = 5;
    char ref[128], size[32];
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(a, i);
        int len = snprintf(ref, sizeof ref, "%s@%d", str_of(e, "name") ? str_of(e, "name") : "?",
                           json_object_get_int(hy_cli_json_get(e, "version")));
        if (len > w) w = len;
    }
    printf("%-*s  %-19s  %9s  %-20s  %-10s  %s\n", w, "MODEL", "DIGEST", "SIZE", "ADDED", "VARIANT",
           "ALIASES");
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(a, i);
        const char *d = str_of(e, "digest"), *added = str_of(e, "added");
        const char *var = str_of(e, "variant");
        snprintf(ref, sizeof ref, "%s@%d", str_of(e, "name") ? str_of(e, "name") : "?",
                 json_object_get_int(hy_cli_json_get(e, "version")));
        hy_cli_size((double)json_object_get_int64(hy_cli_json_get(e, "size")), size, sizeof size);
        hy_cli_put_escaped(stdout, ref);
        printf("%*s  %-19.19s  %9s  %-20.20s  %-10s  ", w - (int)strlen(ref), "", d ? d : "?", size,
               added ? added : "?", var ? var : "-");
        put_list(hy_cli_json_get(e, "aliases"), 16);
        putchar('\n');
    }
    json_object_put(a);
    return finish();
}

static int cmd_show(hy_registry *r, const reg_opts *o) {
    char *js = NULL, buf[64];
    if (hy_registry_show(r, o->pos[0], &js) != HY_OK) return fail(o->pos[0]);
    int rc;
    json_object *e = json_or_print(js, o, &rc);
    if (!e) return rc;
    const char *name = str_of(e, "name");
    label("", "model");
    hy_cli_put_escaped(stdout, name ? name : "?");
    printf("@%d\n", json_object_get_int(hy_cli_json_get(e, "version")));
    line_str("digest", str_of(e, "digest"));
    json_object *v;
    if ((v = hy_cli_json_get(e, "size"))) {
        label("", "size");
        long long b = json_object_get_int64(v);
        printf("%s (%s bytes)\n", hy_cli_size((double)b, buf, sizeof buf),
               hy_cli_thousands(b, buf + 32, 32));
    }
    line_str("added", str_of(e, "added"));
    line_str("format", str_of(e, "format"));
    line_str("architecture", str_of(e, "architecture"));
    line_str("variant", str_of(e, "variant"));
    if ((v = hy_cli_json_get(e, "nc"))) {
        label("", "nc");
        put_value(v);
        putchar('\n');
    }
    if ((v = hy_cli_json_get(e, "names")) && json_object_is_type(v, json_type_array)) {
        label("", "names");
        put_list(v, N_NAMES_SHOWN);
        if (json_object_array_length(v) <= N_NAMES_SHOWN) printf(" (%zu)", json_object_array_length(v));
        putchar('\n');
    }
    if ((v = hy_cli_json_get(e, "parameters"))) {
        label("", "parameters");
        printf("%s\n", hy_cli_thousands(json_object_get_int64(v), buf, sizeof buf));
    }
    if ((v = hy_cli_json_get(e, "imgsz"))) {
        label("", "imgsz");
        put_value(v);
        putchar('\n');
    }
    label("", "scenario");
    hy_cli_put_escaped(stdout, str_of(e, "scenario") ? str_of(e, "scenario") : "-");
    putchar('\n');
    label("", "metrics");
    put_pairs(hy_cli_json_get(e, "metrics"));
    putchar('\n');
    label("", "tags");
    put_list(hy_cli_json_get(e, "tags"), 64);
    putchar('\n');
    label("", "aliases");
    put_list(hy_cli_json_get(e, "aliases"), 64);
    putchar('\n');
    label("", "bound by");
    put_list(hy_cli_json_get(e, "bound_by"), 64);
    putchar('\n');
    line_str("blob", str_of(e, "blob"));
    print_record(hy_cli_json_get(e, "record"));
    json_object_put(e);
    return finish();
}

static int cmd_alias(hy_registry *r, const reg_opts *o) {
    if (hy_registry_alias(r, o->nv_name, o->nv_version, o->pos[1]) != HY_OK) return fail(o->pos[0]);
    printf("%s@%s -> %s\n", o->nv_name, o->pos[1], o->pos[0]);
    return finish();
}

static int cmd_bind(hy_registry *r, const reg_opts *o) {
    if (hy_registry_bind(r, o->pos[0], o->nv_name, o->nv_version) != HY_OK) return fail(o->pos[1]);
    printf("%s -> %s\n", o->pos[0], o->pos[1]);
    return finish();
}

static int cmd_bindings(hy_registry *r, const reg_opts *o) {
    char *js = NULL;
    if (hy_registry_bindings(r, &js) != HY_OK) return fail(NULL);
    int rc;
    json_object *a = json_or_print(js, o, &rc);
    if (!a) return rc;
    size_t n = json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
    if (!n) puts("no bindings");
    int w = 7;
    for (size_t i = 0; i < n; i++) {
        const char *p = str_of(json_object_array_get_idx(a, i), "project");
        if (p && (int)strlen(p) > w) w = (int)strlen(p);
    }
    if (n) printf("%-*s  %s\n", w, "PROJECT", "MODEL");
    for (size_t i = 0; i < n; i++) {
        json_object *b = json_object_array_get_idx(a, i);
        const char *p = str_of(b, "project"), *nm = str_of(b, "name"), *d = str_of(b, "digest");
        hy_cli_put_escaped(stdout, p ? p : "?");
        printf("%*s  ", w - (int)strlen(p ? p : "?"), "");
        hy_cli_put_escaped(stdout, nm ? nm : "?");
        printf("@%d  %s\n", json_object_get_int(hy_cli_json_get(b, "version")), d ? d : "");
    }
    json_object_put(a);
    return finish();
}

static int cmd_rm(hy_registry *r, const reg_opts *o) {
    hy_status st = hy_registry_rm(r, o->nv_name, o->nv_version, o->force);
    if (st == HY_ERR_BUSY) {
        hy_cli_error(CMD, "%s (use --force to remove it with them)", hy_last_error());
        return HY_CLI_RUNTIME;
    }
    if (st != HY_OK) return fail(o->pos[0]);
    printf("removed %s (its blob stays until 'hotyolo registry gc')\n", o->pos[0]);
    return finish();
}

static int cmd_gc(hy_registry *r, const reg_opts *o) {
    (void)o;
    size_t n = 0;
    uint64_t bytes = 0;
    char buf[32];
    if (hy_registry_gc(r, &n, &bytes) != HY_OK) return fail(NULL);
    printf("removed %zu unreferenced blob%s, %s freed\n", n, n == 1 ? "" : "s",
           hy_cli_size((double)bytes, buf, sizeof buf));
    return finish();
}

/* One line per finding: a mismatch, or a harmless leftover of an interrupted add (the
 * library says which in the text; only mismatches count in n_bad). */
static void on_report(const char *what, const char *problem, void *user) {
    (void)user;
    hy_cli_put_escaped(stdout, what ? what : "?");
    fputs(": ", stdout);
    hy_cli_put_escaped(stdout, problem ? problem : "?");
    putchar('\n');
}

static int cmd_verify(hy_registry *r, const reg_opts *o) {
    (void)o;
    size_t checked = 0, bad = 0;
    hy_status st = hy_registry_verify(r, &checked, &bad, on_report, NULL);
    if (st != HY_OK && st != HY_ERR_FORMAT) return fail(NULL);
    printf("checked %zu blob%s: %zu bad\n", checked, checked == 1 ? "" : "s", bad);
    int rc = finish();
    if (st == HY_ERR_FORMAT || bad) {
        hy_cli_error(CMD, "verify: %zu of %zu blobs failed (each listed above)", bad, checked);
        return HY_CLI_RUNTIME;
    }
    return rc;
}

static int cmd_export(hy_registry *r, const reg_opts *o) {
    if (hy_registry_export(r, o->pos[0], o->pos[1], o->force) != HY_OK) return fail(o->pos[0]);
    fputs("exported ", stdout);
    hy_cli_put_escaped(stdout, o->pos[0]);
    fputs(" to ", stdout);
    hy_cli_put_escaped(stdout, o->pos[1]);
    putchar('\n');
    return finish();
}

static int cmd_push(hy_registry *r, const reg_opts *o) {
    if (hy_registry_push(r, o->pos[0], o->pos[1], &o->oci) != HY_OK) return fail(o->pos[1]);
    fputs("pushed ", stdout);
    hy_cli_put_escaped(stdout, o->pos[0]);
    fputs(" to ", stdout);
    hy_cli_put_escaped(stdout, o->pos[1]);
    putchar('\n');
    return finish();
}

static int cmd_pull(hy_registry *r, const reg_opts *o) {
    int v = 0;
    if (hy_registry_pull(r, o->pos[0], o->name, &o->oci, &v) != HY_OK) return fail(o->pos[0]);
    print_entry_line(r, "pulled", o->name, v);
    return finish();
}

// --- command ---------------------------------------------------------------------------

int hy_cli_registry(int argc, char **argv) {
    reg_opts o = {0};
    const subcommand *sub = NULL;
    hy_registry *r = NULL;
    int rc;
    o.pos = malloc((size_t)(argc > 0 ? argc : 1) * sizeof *o.pos);
    if (!o.pos) {
        hy_cli_error(CMD, "out of memory");
        return HY_CLI_RUNTIME;
    }
    int pr = parse_args(argc, argv, &o, &sub);
    if (pr != 0) {
        rc = pr > 0 ? HY_CLI_OK : HY_CLI_USAGE;
        goto done;
    }
    if (hy_registry_open(o.dir, sub->create, &r) != HY_OK) {
        rc = fail(o.dir);
        goto done;
    }
    rc = sub->fn(r, &o);
done:
    hy_registry_close(r);
    free(o.nv_name);
    free(o.pos);
    return rc;
}
