/* hotyolo command-line tool: shared declarations for the files in tools/.
 * Only tools/ prints or exits; it uses the public API (hotyolo.h) alone. */
#ifndef HY_CLI_H
#define HY_CLI_H

#include "hotyolo.h"

/* Exit codes of every subcommand. */
enum { HY_CLI_OK = 0, HY_CLI_RUNTIME = 1, HY_CLI_USAGE = 2 };

/* Subcommands: argv[0] is the subcommand name; return an exit code. */
int hy_cli_detect(int argc, char **argv);

/* Prints "hotyolo <cmd>: error: <fmt>\n" to stderr. */
void hy_cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
