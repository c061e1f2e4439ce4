/* core/settings.c — see settings.h. */
#include "core/settings.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

static ember_status us_from(const em_conf *c, const char *key, int64_t dflt,
                            uint64_t *out, ember_error *err)
{
    int64_t ms;
    ember_status st = c ? em_conf_get_duration_ms(c, key, dflt, &ms, err)
                        : (ms = dflt, EMBER_OK);
    if (st != EMBER_OK)
        return st;
    /* Microseconds must fit: about 292,000 years is plenty. */
    if (ms < 0 || ms > INT64_MAX / 1000)
        return ember_errorf(err, EMBER_EINVAL,
                            "configuration %s: %lld ms is too long (at most "
                            "%lld ms)", key, (long long)ms,
                            (long long)(INT64_MAX / 1000));
    *out = (uint64_t)ms * 1000;
    return EMBER_OK;
}

ember_status em_kernel_read_settings(const em_conf *c,
                                     em_kernel_settings *s,
                                     ember_error *err)
{
    ember_status st;
    int64_t v;
    memset(s, 0, sizeof *s);
    em_tsched_conf_defaults(&s->ts);
    em_dag_conf_defaults(&s->dag);
    s->mode = EM_SCHED_FIFO;
    if (!c)
        return EMBER_OK;
    char buf[64];
    size_t len;
    st = em_conf_get(c, "ember.scheduler.mode", buf, sizeof buf, &len);
    if (st == EMBER_OK) {
        if (!strcasecmp(buf, "FAIR"))
            s->mode = EM_SCHED_FAIR;
        else if (strcasecmp(buf, "FIFO"))
            return ember_errorf(err, EMBER_EINVAL,
                                "configuration ember.scheduler.mode: '%s' "
                                "is not FIFO or FAIR", buf);
    } else if (st != EMBER_ENOTFOUND) {
        return ember_errorf(err, EMBER_EINVAL,
                            "configuration ember.scheduler.mode: value too "
                            "long (FIFO or FAIR)");
    }
    st = em_conf_get(c, "ember.scheduler.allocation.file", s->alloc_file,
                     sizeof s->alloc_file, &len);
    if (st == EMBER_ENOSPC)
        return ember_errorf(err, EMBER_EINVAL,
                            "configuration ember.scheduler.allocation.file: "
                            "path too long");
    if (st != EMBER_OK)
        s->alloc_file[0] = '\0';
    if ((st = em_conf_get_int(c, "ember.task.maxFailures", 4, 1, 65535, &v,
                              err)) != EMBER_OK)
        return st;
    s->ts.max_failures = (uint32_t)v;
    if ((st = em_conf_get_int(c, "ember.stage.maxConsecutiveAttempts", 4, 1,
                              1000, &v, err)) != EMBER_OK)
        return st;
    s->dag.max_consecutive_attempts = (uint32_t)v;
    if ((st = us_from(c, "ember.stage.resubmitDelay", 200,
                      &s->dag.resubmit_delay_us, err)) != EMBER_OK)
        return st;
    if ((st = em_conf_get_size(c, "ember.driver.maxResultSize",
                               (int64_t)1 << 30, &v, err)) != EMBER_OK)
        return st;
    s->dag.max_result_size = (uint64_t)v;
    uint64_t wait;
    if ((st = us_from(c, "ember.locality.wait", 3000, &wait, err)) !=
            EMBER_OK ||
        (st = us_from(c, "ember.locality.wait.process", (int64_t)wait / 1000,
                      &s->ts.locality_wait_us[0], err)) != EMBER_OK ||
        (st = us_from(c, "ember.locality.wait.node", (int64_t)wait / 1000,
                      &s->ts.locality_wait_us[1], err)) != EMBER_OK)
        return st;
    if ((st = em_conf_get_bool(c, "ember.speculation", 0, &s->ts.speculation,
                               err)) != EMBER_OK ||
        (st = us_from(c, "ember.speculation.interval", 100,
                      &s->ts.spec_interval_us, err)) != EMBER_OK ||
        (st = em_conf_get_double(c, "ember.speculation.multiplier", 1.5, 1.0,
                                 1e6, &s->ts.spec_multiplier, err)) !=
            EMBER_OK ||
        (st = em_conf_get_double(c, "ember.speculation.quantile", 0.75, 0.0,
                                 1.0, &s->ts.spec_quantile, err)) !=
            EMBER_OK ||
        (st = us_from(c, "ember.speculation.minTaskRuntime", 100,
                      &s->ts.spec_min_runtime_us, err)) != EMBER_OK ||
        (st = us_from(c, "ember.executor.heartbeatTimeout", 120000,
                      &s->ts.executor_timeout_us, err)) != EMBER_OK)
        return st;
    if (s->ts.speculation && s->ts.spec_interval_us == 0)
        return ember_errorf(err, EMBER_EINVAL,
                            "configuration ember.speculation.interval: must "
                            "be more than 0 when ember.speculation is on");
    return EMBER_OK;
}

