/*
 * wordcount — the classic: count the words of a text with ember.
 *
 *   wordcount [--master URL] [--conf key=value]... INPUT
 *
 * prints one "word<TAB>count" line per distinct word (any order). A word
 * is a maximal run of bytes that are not ASCII white space. INPUT is a
 * file, a directory or a glob. The same job as a plan file is
 * examples/wordcount/wordcount.json (`ember run`).
 *
 * The pipeline: text_file -> flat_map(std.split_words) ->
 * map(std.pair_with 1) -> reduce_by_key(std.sum) -> collect.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ember/ember.h>
#include <ember/record.h>

static int usage(void)
{
    fprintf(stderr, "usage: wordcount [--master URL] [--conf key=value]... "
                    "INPUT\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *master = NULL, *input = NULL;
    const char *flags[64];
    size_t nflags = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--master") == 0 && i + 1 < argc)
            master = argv[++i];
        else if (strcmp(argv[i], "--conf") == 0 && i + 1 < argc && nflags < 63)
            flags[nflags++] = argv[++i];
        else if (strcmp(argv[i], "--help") == 0)
            return usage() - 2;
        else if (argv[i][0] == '-' || input)
            return usage();
        else
            input = argv[i];
    }
    if (!input)
        return usage();
    flags[nflags] = NULL;

    ember_error err = {0};
    ember_session *s = NULL;
    ember_session_opts opts = {.master = master,
                               .app_name = "wordcount",
                               .conf_flags = flags};
    if (ember_session_open(&s, &opts, &err) != EMBER_OK) {
        fprintf(stderr, "wordcount: %s\n", err.msg);
        return 1;
    }
    int rc = 1;
    char *w = NULL; /* a word, unescaped; grown as needed */
    size_t wcap = 0;
    ember_records counts = {0};
    ember_rdd *lines = ember_text_file(s, input, 0, &err);
    ember_rdd *words =
        lines ? ember_flat_map(lines, (ember_fn){"std.split_words", NULL, 0},
                               &err)
              : NULL;
    /* (word, 1): std.pair_with's argument is the record holding 1 */
    uint8_t one[9];
    ember_buf ob = ember_buf_fixed(one, sizeof one);
    ember_rec_put_int(&ob, 1);
    ember_rdd *pairs =
        words ? ember_map(words, (ember_fn){"std.pair_with", one, ob.len},
                          &err)
              : NULL;
    ember_rdd *sums =
        pairs ? ember_reduce_by_key(pairs, (ember_fn){"std.sum", NULL, 0},
                                    NULL, &err)
              : NULL;
    if (!sums || ember_collect(sums, &counts, &err) != EMBER_OK) {
        fprintf(stderr, "wordcount: %s\n", err.msg);
        goto out;
    }
    /* Each result is (word, count). */
    ember_batch b = {counts.data, counts.len, counts.count};
    ember_batch_cursor c = ember_batch_cursor_of(&b);
    const uint8_t *rec;
    size_t len;
    while (ember_batch_next(&c, &rec, &len) == EMBER_OK) {
        ember_rec_cursor rc2 = ember_rec_cursor_init(rec, len);
        ember_value word, n;
        if (ember_rec_next(&rc2, &word) != EMBER_OK ||
            ember_rec_next(&rc2, &n) != EMBER_OK ||
            word.type != EMBER_TYPE_STRING || n.type != EMBER_TYPE_INT) {
            fprintf(stderr, "wordcount: unexpected result record\n");
            goto out;
        }
        if (word.u.str.len + 1 > wcap) {
            char *g = realloc(w, word.u.str.len + 64);
            if (!g)
                goto out;
            w = g;
            wcap = word.u.str.len + 64;
        }
        size_t wl = ember_rec_string_copy(&word, w, word.u.str.len);
        /* "word\tcount\n", the count formatted here: printf per line
         * would cost as much as the rest of the output */
        char num[24];
        size_t k = sizeof num;
        uint64_t v = n.u.i64 < 0 ? 0 - (uint64_t)n.u.i64 : (uint64_t)n.u.i64;
        num[--k] = '\n';
        do {
            num[--k] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        if (n.u.i64 < 0)
            num[--k] = '-';
        num[--k] = '\t';
        fwrite(w, 1, wl, stdout);
        fwrite(num + k, 1, sizeof num - k, stdout);
    }
    rc = 0;
out:
    free(w);
    ember_records_free(&counts);
    ember_session_close(s);
    return rc;
}
