/* bench/bench.h — the subcommands of ember-bench. Each takes its own
 * argv (argv[0] is the subcommand) and returns a process exit code. */
#ifndef EMBER_BENCH_H
#define EMBER_BENCH_H

int bench_scheduler(int argc, char **argv);
int bench_pipeline(int argc, char **argv);

#endif /* EMBER_BENCH_H */
