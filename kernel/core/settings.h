/*
 * core/settings.h — the kernel's configuration, read once when it starts:
 * every scheduling key of docs/configuration.md, parsed and range-checked,
 * with Spark's defaults. A bad value is an error naming the key.
 */
#ifndef EMBER_KERNEL_CORE_SETTINGS_H
#define EMBER_KERNEL_CORE_SETTINGS_H

#include "dag/dag_scheduler.h"
#include "ember/kernel/conf.h"
#include "sched/pool.h"
#include "sched/task_scheduler.h"

typedef struct em_kernel_settings {
    em_sched_mode mode;     /* ember.scheduler.mode */
    char alloc_file[4096];  /* ember.scheduler.allocation.file, or "" */
    em_tsched_conf ts;      /* task scheduler: failures, locality, ... */
    em_dag_conf dag;        /* DAG scheduler: attempts, result size, ... */
} em_kernel_settings;

/* Fills s from c (NULL = all defaults). EMBER_EINVAL with the key and the
 * value in err for a malformed or out-of-range value. */
ember_status em_kernel_read_settings(const em_conf *c, em_kernel_settings *s,
                                     ember_error *err);

#endif /* EMBER_KERNEL_CORE_SETTINGS_H */
