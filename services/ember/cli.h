/*
 * cli.h — shared pieces of the `ember` command-line tool.
 *
 * Exit codes: 0 success, 1 the command failed (a bad plugin, a failed
 * job), 2 usage error. Errors go to stderr as "ember: <message>".
 */
#ifndef EMBER_CLI_H
#define EMBER_CLI_H

#include <stddef.h>

#define CLI_OK 0
#define CLI_FAILED 1
#define CLI_USAGE 2

/* `ember plugin ...`: argv[0] is "plugin". Returns an exit code. */
int cli_plugin(int argc, char **argv);

/* `ember plan ...`: argv[0] is "plan". Returns an exit code. */
int cli_plan(int argc, char **argv);

/* `ember run ...`: argv[0] is "run". Returns an exit code. */
int cli_run(int argc, char **argv);

/* `ember submit ...` (`ember run` against emberd, with --pool): argv[0]
 * is "submit". Returns an exit code. */
int cli_submit(int argc, char **argv);

/* `ember status|list|kill ...` (cmd_service.c): argv[0] is the command.
 * Returns an exit code. */
int cli_service(int argc, char **argv);

/*
 * The emberd a service command talks to: *master if given, else
 * ember.master from the defaults file (properties_file, nullable). It
 * must be an ember://HOST:PORT URL. CLI_OK with *master set (to static
 * storage when read from the file), else an exit code after printing the
 * reason (cmd names the command).
 */
int cli_service_master(const char **master, const char *properties_file,
                       const char *cmd);

/*
 * Reads the file at path whole (at most 1 GiB) into a malloc'd buffer
 * with *len its size; NULL after printing the reason with cli_error.
 */
char *cli_read_file(const char *path, size_t *len);

/* Prints "ember: <message>\n" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* EMBER_CLI_H */
