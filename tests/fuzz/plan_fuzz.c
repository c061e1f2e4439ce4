/*
 * plan_fuzz.c — fuzz target for the plan decoder of kernel/dag.
 *
 * LLVMFuzzerTestOneInput decodes any bytes as a plan and aborts on any
 * inconsistency:
 *   - a refused input leaves no lineage and a non-empty message;
 *   - an accepted one is a DAG in topological order with ids found by
 *     em_lineage_find; its canonical encoding decodes to the same graph
 *     and fingerprints, and encoding that again gives the same bytes;
 *   - toDebugString of its last dataset works (small plans only: a stack
 *     of diamonds legitimately prints a million lines).
 *
 * Built with -fsanitize=fuzzer it is a libFuzzer target. Built with
 * -DEMBER_FUZZ_REPLAY it is plan_fuzz_replay, the replay driver of replay.h
 * without built-in seeds: `plan_fuzz_replay DIR` takes the plans in DIR
 * (tests/fuzz/plan_corpus/) as its seeds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag/lineage.h"
#include "replay.h"

static size_t accepted; /* inputs that decoded, for the replay's summary */

#define CHECK(cond) EM_FUZZ_CHECK("plan_fuzz", cond)

/* Resolves every name but those of plugin "missing". */
static int resolve(void *ctx, const char *name)
{
    (void)ctx;
    return strncmp(name, "missing.", 8) != 0;
}

static void check_same(const em_lineage *a, const em_lineage *b)
{
    uint32_t i, j;
    CHECK(a->count == b->count);
    for (i = 0; i < a->count; i++) {
        const em_node *x = &a->nodes[i], *y = &b->nodes[i];
        CHECK(x->id == y->id && x->op == y->op);
        CHECK(x->fingerprint == y->fingerprint);
        CHECK(x->partitions == y->partitions);
        CHECK(x->output_determinism == y->output_determinism);
        CHECK(em_partitioner_equal(&x->partitioner, &y->partitioner));
        CHECK(x->ndeps == y->ndeps && x->nfns == y->nfns);
        for (j = 0; j < x->ndeps; j++)
            CHECK(x->deps[j].parent == y->deps[j].parent &&
                  x->deps[j].kind == y->deps[j].kind);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    em_lineage *l = NULL, *l2 = NULL;
    em_fn_resolver r = {resolve, NULL};
    ember_error err;
    char *e1 = NULL, *e2 = NULL, *dbg = NULL;
    size_t n1 = 0, n2 = 0;
    uint32_t i, j;
    ember_status s;

    ember_error_clear(&err);
    s = em_lineage_decode(&l, (const char *)data, size, &r, &err);
    if (s != EMBER_OK) {
        CHECK(l == NULL);
        CHECK(err.code == s && err.msg[0] != '\0');
        return 0;
    }
    CHECK(l != NULL);
    accepted++;
    for (i = 0; i < l->count; i++) {
        const em_node *n = &l->nodes[i];
        CHECK(em_lineage_find(l, n->id) == (int64_t)i);
        CHECK(n->op != NULL);
        CHECK(n->partitions <= EM_LINEAGE_MAX_PARTITIONS);
        CHECK(n->output_determinism >= n->determinism);
        for (j = 0; j < n->ndeps; j++)
            CHECK(n->deps[j].parent < i);
    }

    CHECK(em_lineage_encode(l, &e1, &n1, &err) == EMBER_OK);
    CHECK(strlen(e1) == n1);
    s = em_lineage_decode(&l2, e1, n1, &r, &err);
    if (s != EMBER_OK) {
        fprintf(stderr, "plan_fuzz: the encoding does not decode: %s\n%s\n",
                err.msg, e1);
        abort();
    }
    check_same(l, l2);
    CHECK(em_lineage_encode(l2, &e2, &n2, &err) == EMBER_OK);
    CHECK(n1 == n2 && memcmp(e1, e2, n1) == 0);

    if (l->count > 0 && l->count <= 24) {
        CHECK(em_lineage_debug_string(l, l->count - 1, &dbg, &err) ==
              EMBER_OK);
        CHECK(dbg != NULL && dbg[0] == '(');
    }

    free(dbg);
    free(e1);
    free(e2);
    em_lineage_free(l2);
    em_lineage_free(l);
    return 0;
}

#ifdef EMBER_FUZZ_REPLAY

/* One edit of buf[0..*n), capacity cap. JSON-aware tokens make mutations
 * that still parse common. */
static void mutate(uint8_t *buf, size_t *n, size_t cap)
{
    static const char *const tokens[] = {
        "0",       "1",          "-1",        "4",       "16777217",
        "1.5",     "\"narrow\"", "\"shuffle\"", "\"map\"", "\"union\"",
        "\"join\"", "[]",        "{}",        "null",    "true",
        "\"AQ==\"", "\"x.y\"",   ",",         ":",       "\"id\"",
        "9007199254740993", "\"missing.f\"", "\"hash\"", "\"range\""};
    size_t at = em_fuzz_below(*n + 1);
    switch (em_fuzz_below(6)) {
    case 0: /* flip a bit */
        if (*n) {
            size_t p = em_fuzz_below(*n);
            buf[p] ^= (uint8_t)(1u << em_fuzz_below(8));
        }
        break;
    case 1: { /* insert a token */
        const char *t =
            tokens[em_fuzz_below(sizeof tokens / sizeof tokens[0])];
        (void)em_fuzz_insert(buf, n, cap, at, t, strlen(t));
        break;
    }
    case 2: /* delete a few bytes */
        em_fuzz_delete(buf, n, at, 1 + em_fuzz_below(8));
        break;
    case 3: /* replace a digit */
        if (*n) {
            size_t p = em_fuzz_below(*n);
            if (buf[p] >= '0' && buf[p] <= '9')
                buf[p] = (uint8_t)('0' + em_fuzz_below(10));
        }
        break;
    case 4: /* truncate */
        *n = at;
        break;
    default: /* duplicate a chunk in place */
        em_fuzz_duplicate(buf, n, cap, at, 1 + em_fuzz_below(32));
        break;
    }
}

int main(int argc, char **argv)
{
    static const em_fuzz_target target = {
        "plan_fuzz_replay", NULL, 0, 20000, 0, 512, mutate,
        &accepted, "valid"};
    return em_fuzz_replay_main(&target, argc, argv);
}

#endif /* EMBER_FUZZ_REPLAY */
