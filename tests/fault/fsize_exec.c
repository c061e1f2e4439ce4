/*
 * fsize_exec.c — a stand-in for ember-executor (set as
 * ember.executor.command) for the disk-full test of fault_test.c: it
 * lowers its soft RLIMIT_FSIZE to FAULT_FSIZE_LIMIT bytes and ignores
 * SIGXFSZ, then executes the real executor (EMBER_EXECUTOR) with its own
 * arguments. The limit and the ignored signal survive exec, so every file
 * the executor writes stops growing at the limit and the write past it
 * fails with EFBIG, as on a full disk, instead of killing the process. It
 * needs no privilege (a soft limit may always be lowered) and leaves the
 * driver — the test process and its state store — unlimited.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    (void)argc;
    struct rlimit rl;
    if (getrlimit(RLIMIT_FSIZE, &rl) != 0) {
        fprintf(stderr, "fsize_exec: getrlimit: %s\n", strerror(errno));
        return 127;
    }
    if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > FAULT_FSIZE_LIMIT)
        rl.rlim_cur = FAULT_FSIZE_LIMIT;
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0 ||
        signal(SIGXFSZ, SIG_IGN) == SIG_ERR) {
        fprintf(stderr, "fsize_exec: cannot limit file sizes: %s\n",
                strerror(errno));
        return 127;
    }
    argv[0] = (char *)EMBER_EXECUTOR;
    execv(EMBER_EXECUTOR, argv);
    fprintf(stderr, "fsize_exec: %s: %s\n", EMBER_EXECUTOR, strerror(errno));
    return 127;
}
