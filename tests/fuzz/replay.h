/*
 * replay.h — the replay driver shared by the fuzz targets of tests/fuzz.
 *
 * Every target defines LLVMFuzzerTestOneInput. Built with -fsanitize=fuzzer
 * it is a libFuzzer target and this module is not linked. Built with
 * -DEMBER_FUZZ_REPLAY it gets a plain main that calls em_fuzz_replay_main
 * with its em_fuzz_target, and links replay.c:
 *     NAME                   built-in seeds + deterministic mutations
 *     NAME DIR               the files in DIR as seeds + mutations
 *     NAME FILE...           replays the given inputs
 *     NAME --write-seeds DIR writes the built-in seeds to DIR
 *
 * Everything here runs on the program's one thread; the random generator
 * is a process-wide state, seeded the same way on every run.
 */
#ifndef EMBER_TESTS_FUZZ_REPLAY_H
#define EMBER_TESTS_FUZZ_REPLAY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * The targets' assertion: when cond is false, prints "<who>:<line>: check
 * failed: <cond>" to stderr and aborts (libFuzzer and the replay driver
 * both report an abort as a crash). A macro only, so that the libFuzzer
 * builds, which do not link replay.c, can use it too.
 */
#define EM_FUZZ_CHECK(who, cond)                                             \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", who, __LINE__,      \
                    #cond);                                                  \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* Nonzero when every byte of p[0..n) is zero (a refused decode's output).
 * Inline, for the libFuzzer builds too. */
static inline int em_fuzz_all_zero(const void *p, size_t n)
{
    const uint8_t *b = (const uint8_t *)p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

/* Nonzero when the view p[0..len) a decoder handed out lies inside the
 * input [lo, hi) (p may be NULL only when len is 0). Inline, as above. */
static inline int em_fuzz_inside(const uint8_t *p, size_t len,
                                 const uint8_t *lo, const uint8_t *hi)
{
    if (p == NULL || len == 0)
        return len == 0;
    return p >= lo && p <= hi && len <= (size_t)(hi - p);
}

/*
 * The fuzz target: checks one input, aborting on any inconsistency; returns
 * 0. data may be NULL when size is 0. Defined by each target file (libFuzzer
 * calls it by this name); declared here for the driver and the -Wmissing-
 * prototypes rule.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input: its file name under --write-seeds, its bytes. */
typedef struct em_fuzz_seed {
    const char *name;
    const uint8_t *data;
    size_t len;
} em_fuzz_seed;

/*
 * What the driver needs to know of a target. Static data of the target
 * file; the driver only reads it.
 */
typedef struct em_fuzz_target {
    /* Program name, the prefix of every line the driver prints. */
    const char *name;
    /* The built-in seeds, valid inputs; NULL (and nseeds 0) when the
     * target has none and takes its seeds from a directory argument. */
    const em_fuzz_seed *seeds;
    size_t nseeds;
    /* Mutated inputs run after the seeds. */
    size_t rounds;
    /* The mutation buffer of a seed of n bytes holds n + grow bytes, and
     * at least min_cap. */
    size_t min_cap;
    size_t grow;
    /* Applies one random edit to buf[0..*len), never past cap bytes; draws
     * only from em_fuzz_rand / em_fuzz_below, so runs are reproducible. */
    void (*mutate)(uint8_t *buf, size_t *len, size_t cap);
    /* A count the target raises for every input (or decode) it accepts:
     * each seed must raise it, and the summary line prints it followed by
     * accepted_what ("valid", "decodes accepted"). */
    const size_t *accepted;
    const char *accepted_what;
} em_fuzz_target;

/*
 * The replay program for target t, taking main's argc/argv (usage above).
 * Every input goes to LLVMFuzzerTestOneInput in an exact-size heap copy, so
 * that ASan sees any over-read. With no arguments, or a single directory
 * argument, the seeds (built-in, or the directory's files in name order,
 * skipping dot files) run first, each of which must be accepted; then a
 * NULL input of size 0; then t->rounds inputs, each a random seed with one
 * to four t->mutate edits. Prints one summary line to stdout.
 * Returns the exit status: 0 when all ran, 1 when a file could not be read
 * or written or a seed was refused (with a message on stderr), 2 on a usage
 * error. A failed check in the target aborts instead.
 */
int em_fuzz_replay_main(const em_fuzz_target *t, int argc, char **argv);

/* The next 64 random bits (splitmix64; the sequence starts the same on
 * every run). */
uint64_t em_fuzz_rand(void);

/* A random number below n, drawn with em_fuzz_rand; 0 when n is 0 (and
 * then nothing is drawn). */
size_t em_fuzz_below(size_t n);

/*
 * Inserts src[0..k) at offset at (<= *len) of buf[0..*len), when the result
 * fits in cap bytes; returns nonzero when it did. at == *len appends.
 */
int em_fuzz_insert(uint8_t *buf, size_t *len, size_t cap, size_t at,
                   const void *src, size_t k);

/* Removes buf[at..at+k) from buf[0..*len) when that range lies inside it. */
void em_fuzz_delete(uint8_t *buf, size_t *len, size_t at, size_t k);

/*
 * Repeats buf[at..at+k) right after itself when that range lies inside
 * buf[0..*len) and the result fits in cap bytes.
 */
void em_fuzz_duplicate(uint8_t *buf, size_t *len, size_t cap, size_t at,
                       size_t k);

/*
 * The byte-level edits the binary formats share, at offset at of
 * buf[0..*len) (at < *len when *len > 0, else 0), never past cap bytes:
 *   op 0  flips a random bit of buf[at]
 *   op 1  overwrites buf[at] with a random byte of dict
 *   op 2  inserts a byte at at: half the time one of dict, else random
 *   op 3  deletes buf[at]
 *   op 4  truncates to at bytes
 *   else  repeats 1 to 8 bytes from at right after themselves
 * dict holds ndict (> 0) interesting bytes. Draws with em_fuzz_below.
 */
void em_fuzz_edit(uint8_t *buf, size_t *len, size_t cap, size_t at,
                  unsigned op, const uint8_t *dict, size_t ndict);

/*
 * The mutation of the message envelopes (kernel/msg), whose type is byte
 * 5: with op drawn below 8, op 5 sets the type byte (when there is one)
 * to type_lo plus a number below type_span, op 6 appends the start of a
 * random one of seeds[0..nseeds), any other op is em_fuzz_edit's with
 * dict. Draws with em_fuzz_below.
 */
void em_fuzz_mutate_envelope(uint8_t *buf, size_t *len, size_t cap,
                             const em_fuzz_seed *seeds, size_t nseeds,
                             unsigned type_lo, unsigned type_span,
                             const uint8_t *dict, size_t ndict);

#endif /* EMBER_TESTS_FUZZ_REPLAY_H */
