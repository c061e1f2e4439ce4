/* The process log (see ember/kernel/log.h). */
#include "ember/kernel/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG",
                                          "TRACE"};

/* -1 until first use, then the threshold. */
static atomic_int threshold = -1;

ember_status em_log_parse_level(const char *name, int *level)
{
    for (int i = 0; i < 5; i++) {
        if (name && strcasecmp(name, level_names[i]) == 0) {
            *level = i;
            return EMBER_OK;
        }
    }
    return EMBER_EINVAL;
}

static int current_threshold(void)
{
    int t = atomic_load_explicit(&threshold, memory_order_relaxed);
    if (t >= 0)
        return t;
    t = EMBER_LOG_WARN;
    const char *env = getenv("EMBER_LOG_LEVEL");
    if (env && em_log_parse_level(env, &t) != EMBER_OK)
        t = EMBER_LOG_WARN;
    int expected = -1;
    atomic_compare_exchange_strong(&threshold, &expected, t);
    return atomic_load(&threshold);
}

void em_log_set_level(int level)
{
    if (level < EMBER_LOG_ERROR)
        level = EMBER_LOG_ERROR;
    if (level > EMBER_LOG_TRACE)
        level = EMBER_LOG_TRACE;
    atomic_store(&threshold, level);
}

int em_log_enabled(int level)
{
    return level <= current_threshold();
}

void em_logv(int level, const char *source, const char *fmt, va_list ap)
{
    if (!em_log_enabled(level))
        return;
    if (level < 0)
        level = 0;
    if (level > 4)
        level = 4;
    char line[2048];
    int n = source ? snprintf(line, sizeof line, "ember %s [%s] ",
                              level_names[level], source)
                   : snprintf(line, sizeof line, "ember %s ",
                              level_names[level]);
    if (n < 0)
        return;
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    /* One write per line keeps concurrent lines whole. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void em_log(int level, const char *source, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    em_logv(level, source, fmt, ap);
    va_end(ap);
}
