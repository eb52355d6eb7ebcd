/* hotyolo verify FILE: re-hashes a hotyolo .safetensors file's data section against the
 * sha256 recorded in its metadata. Prints "FILE: OK (data sha256 <hex>)" and exits 0 when
 * they match; exits 1 with the library's message otherwise (mismatch, no recorded hash, not
 * a safetensors file, unreadable); 2 on a usage error. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"

#define CMD "verify"

static void help(void) {
    printf("Usage: hotyolo verify FILE\n"
           "\n"
           "Checks that the data of FILE, a hotyolo .safetensors file (see 'hotyolo\n"
           "convert'), still has the sha256 recorded in its metadata when it was written.\n"
           "Prints 'FILE: OK (data sha256 <hex>)' when it does.\n"
           "\n"
           "Options:\n"
           "  -h, --help  show this help\n"
           "\n"
           "Exit status: 0 the data matches, 1 it does not, or FILE records no hash, is not\n"
           "a valid .safetensors file or cannot be read, 2 usage error.\n"
           "\n"
           "Example:\n"
           "  hotyolo verify yolov8n.safetensors\n");
}

int hy_cli_verify(int argc, char **argv) {
    static const hy_cli_opt table[] = {{"--help", "-h", 0, 0}};
    const char *path = NULL;
    int positional_only = 0;
    for (int i = 1; i < argc; i++) {
        const char *val;
        int k = hy_cli_next_opt(CMD, table, 1, argc, argv, &i, &positional_only, &val);
        if (k == -1) return HY_CLI_USAGE;
        if (k == -3) continue;
        if (k == 0) {
            help();
            return HY_CLI_OK;
        }
        if (path) {
            hy_cli_error(CMD, "unexpected argument '%s': one FILE at a time (see 'hotyolo verify "
                         "--help')", argv[i]);
            return HY_CLI_USAGE;
        }
        path = argv[i];
    }
    if (!path) {
        hy_cli_error(CMD, "missing FILE argument (see 'hotyolo verify --help')");
        return HY_CLI_USAGE;
    }

    if (hy_verify(path) != HY_OK) {
        /* A weights file of another format gets a plainer message than the safetensors
         * reader's complaint about its first bytes. */
        char *raw = NULL;
        const char *fmt = NULL;
        json_object *o = NULL;
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", hy_last_error());
        if (hy_inspect(path, 0, &raw) == HY_OK && (o = json_tokener_parse(raw)) != NULL) {
            json_object *f = hy_cli_json_get(o, "format");
            fmt = f ? json_object_get_string(f) : NULL;
        }
        if (fmt && strcmp(fmt, "safetensors") != 0)
            hy_cli_error(CMD, "'%s' is not a .safetensors file (format: %s): only hotyolo "
                         ".safetensors files record a data sha256 (make one with 'hotyolo "
                         "convert')", path, fmt);
        else if (strstr(msg, path))
            hy_cli_error(CMD, "%s", msg);
        else
            hy_cli_error(CMD, "'%s': %s", path, msg);
        json_object_put(o);
        hy_free(raw);
        return HY_CLI_RUNTIME;
    }
    /* The recorded hash, now known to equal the data's. */
    json_object *o = hy_cli_inspect_load(CMD, path, 0, NULL);
    if (!o) return HY_CLI_RUNTIME;
    json_object *sha = hy_cli_json_get(hy_cli_json_get(o, "metadata"), "hotyolo.data_sha256");
    hy_cli_put_escaped(stdout, path);
    printf(": OK (data sha256 %s)\n", sha ? json_object_get_string(sha) : "?");
    json_object_put(o);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        hy_cli_error(CMD, "error writing to standard output");
        return HY_CLI_RUNTIME;
    }
    return HY_CLI_OK;
}
