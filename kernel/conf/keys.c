/*
 * The table of known configuration keys (see ember/kernel/conf.h).
 *
 * Every key the kernel, the executors or a bundled plugin reads is listed
 * here with its type, default and range, so that em_conf_check can report
 * unknown keys and bad values before anything starts, and --verbose can show
 * every effective value. Defaults and ranges must match the code that reads
 * the key (kernel/core/settings.c for the scheduling keys). Keep the table
 * sorted by name (strcmp order): em_conf_key_find searches it by halves and
 * conf_file_test checks the order.
 */
#include "ember/kernel/conf.h"

#include <string.h>

/* The longest duration the kernel accepts: microseconds must fit int64. */
#define MAX_MS (INT64_MAX / 1000)

#define K_STRING(n, d, doc) {n, EM_CONF_STRING, d, 0, 0, 0, 0, NULL, NULL, doc}
#define K_SIZE(n, d, lo, hi, doc) \
    {n, EM_CONF_SIZE, d, lo, hi, 0, 0, NULL, NULL, doc}
#define K_DURATION(n, d, lo, doc) \
    {n, EM_CONF_DURATION, d, lo, MAX_MS, 0, 0, NULL, NULL, doc}
#define K_INT(n, d, lo, hi, doc) {n, EM_CONF_INT, d, lo, hi, 0, 0, NULL, NULL, doc}
#define K_BOOL(n, d, doc) {n, EM_CONF_BOOL, d, 0, 0, 0, 0, NULL, NULL, doc}
#define K_DOUBLE(n, d, lo, hi, doc) \
    {n, EM_CONF_DOUBLE, d, 0, 0, lo, hi, NULL, NULL, doc}
#define K_ENUM(n, d, vals, doc) {n, EM_CONF_ENUM, d, 0, 0, 0, 0, vals, NULL, doc}
#define K_PREFIX(n, doc) {n, EM_CONF_PREFIX, NULL, 0, 0, 0, 0, NULL, NULL, doc}
#define K_DURATION_FROM(n, from, doc) \
    {n, EM_CONF_DURATION, NULL, 0, MAX_MS, 0, 0, NULL, from, doc}

static const em_conf_key known_keys[] = {
    K_STRING("ember.app.name", "ember", "the application's name in logs, "
             "the state store and `ember list`"),
    K_SIZE("ember.broadcast.blockSize", "4m", 1024, (int64_t)1 << 30,
           "size of the chunks executors fetch a broadcast in, each with "
           "its own checksum"),
    K_STRING("ember.checkpoint.dir", NULL,
             "directory for ember_checkpoint (and \"checkpoint\": true in "
             "plan files) when ember_set_checkpoint_dir was not called; "
             "unset: none"),
    K_INT("ember.default.parallelism", NULL, 1, 1000000,
          "partitions of a dataset made without a count (parallelize, "
          "shuffles); unset: the number of slots"),
    K_SIZE("ember.driver.maxResultSize", "1g", 0, INT64_MAX,
           "total result bytes one job may return to the driver; 0 = no "
           "limit"),
    K_STRING("ember.executor.command", NULL,
             "path of the ember-executor program; unset: the one installed "
             "beside ember"),
    K_STRING("ember.executor.confFile", NULL,
             "set by the driver: a defaults file holding its settings, "
             "which executor processes load (--properties-file)"),
    K_INT("ember.executor.cores", "1", 1, 65535,
          "task slots of each executor"),
    K_DURATION("ember.executor.heartbeatInterval", "10s", 1,
               "how often an executor reports to the kernel"),
    K_DURATION("ember.executor.heartbeatTimeout", "120s", 0,
               "an executor silent for this long is lost; 0 = never"),
    K_INT("ember.executor.instances", NULL, 0, 1000000,
          "executors to start; unset: the master URL decides"),
    K_SIZE("ember.executor.memory", "1g", 0, INT64_MAX,
           "memory of each executor process"),
    K_STRING("ember.executor.plugins", NULL,
             "set by the driver: colon-separated plugin files executor "
             "processes load (the ones the driver loaded by path)"),
    K_PREFIX("ember.executorEnv.", "ember.executorEnv.NAME: environment "
             "variable NAME of executor processes"),
    K_SIZE("ember.files.maxPartitionBytes", "128m", 1, INT64_MAX,
           "largest slice of an input file one partition reads"),
    K_PREFIX("ember.hadoop.", "ember.hadoop.*: passed to storage plugins "
             "as they are"),
    K_STRING("ember.io.compression.codec", "lz4",
             "codec of shuffle blocks and spills: none, lz4, zstd (any "
             "loaded codec plugin's name)"),
    K_INT("ember.io.compression.zstd.level", "1", -131072, 22,
          "compression level of the zstd codec plugin (libzstd's range)"),
    K_STRING("ember.local.dir", "/tmp",
             "directories for shuffle files and spills (comma-separated; "
             "Spark's spark.local.dir)"),
    K_DURATION("ember.locality.wait", "3s", 0,
               "how long a task set waits for a slot on its preferred "
               "executor or host before it takes a less local one"),
    K_DURATION_FROM("ember.locality.wait.node", "ember.locality.wait",
                    "the locality wait at NODE_LOCAL; also how long a free "
                    "slot may stay idle for locality"),
    K_DURATION_FROM("ember.locality.wait.process", "ember.locality.wait",
                    "the locality wait at PROCESS_LOCAL"),
    K_STRING("ember.master", "local[*]",
             "the master URL: local[N], local-cluster[N,C,M], "
             "ember://host:port"),
    K_SIZE("ember.memory.offHeap.size", "0", 0, INT64_MAX,
           "shared memory for OFF_HEAP blocks per executor (0: OFF_HEAP "
           "blocks go to disk)"),
    K_DOUBLE("ember.memory.storageFraction", "0.5", 0.0, 1.0,
             "share of ember.executor.memory that cached blocks may use"),
    K_DURATION("ember.network.timeout", "120s", 0,
               "a peer that sends nothing (not even an answer to a ping) "
               "for this long is taken for dead: an ember:// driver whose "
               "emberd stopped answering fails instead of hanging "
               "(Spark's spark.network.timeout); 0 = never"),
    K_DURATION("ember.pipe.timeout", "0", 0,
               "longest time a pipe() command may run per partition; 0 = "
               "no limit"),
    K_PREFIX("ember.plugin.", "ember.plugin.*: settings defined by "
             "plugins"),
    K_STRING("ember.plugins.path", NULL,
             "colon-separated directories searched for plugins"),
    K_INT("ember.rdd.limit.initialNumPartitions", "1", 1, 1000000,
          "partitions take() and limit scan first"),
    K_INT("ember.rdd.limit.scaleUpFactor", "4", 2, 1000000,
          "how many times more partitions each further take() round scans"),
    K_SIZE("ember.reducer.maxSizeInFlight", "48m", 1, INT64_MAX,
           "bytes of remote shuffle blocks a reduce task has requested "
           "and not yet processed"),
    K_SIZE("ember.result.batchBytes", "1m", 1, INT64_MAX,
           "bytes of results sent to the driver per message"),
    K_STRING("ember.scheduler.allocation.file", NULL,
             "FAIR mode: the pool file (fairscheduler.xml format)"),
    K_ENUM("ember.scheduler.mode", "FIFO", "FIFO|FAIR",
           "FIFO: jobs in submission order; FAIR: slots shared by pools"),
    K_STRING("ember.scheduler.pool", "default",
             "the pool a job's stages run in"),
    K_INT("ember.service.maxClients", "256", 1, 1000000,
          "clients emberd serves at once"),
    K_ENUM("ember.shuffle.compress", "auto", "auto|true|false",
           "compress shuffle blocks with ember.io.compression.codec: true, "
           "false, or auto (only when blocks may cross a network: executors "
           "served over tcp)"),
    K_SIZE("ember.shuffle.file.buffer", "32k", 512, 1 << 30,
           "write buffer per shuffle file"),
    K_STRING("ember.shuffle.manager", "sort",
             "the shuffle manager plugin: sort or hash (component "
             "NAME.manager)"),
    K_SIZE("ember.shuffle.memory", "128m", 65536, INT64_MAX,
           "records a map task buffers (and a map-side combine holds) "
           "before spilling to ember.local.dir"),
    K_INT("ember.shuffle.sort.bypassMergeThreshold", "200", 0, 16777216,
          "unsorted shuffles into at most this many partitions skip the "
          "sort"),
    K_BOOL("ember.speculation", "false",
           "launch a copy of a slow task on another executor"),
    K_DURATION("ember.speculation.interval", "100ms", 0,
               "how often slow tasks are looked for"),
    K_DURATION("ember.speculation.minTaskRuntime", "100ms", 0,
               "tasks younger than this are never copied"),
    K_DOUBLE("ember.speculation.multiplier", "1.5", 1.0, 1e6,
             "a task is slow when it has run this many times the median "
             "run time of its stage's finished tasks"),
    K_DOUBLE("ember.speculation.quantile", "0.75", 0.0, 1.0,
             "fraction of a stage's tasks that must finish before "
             "speculation starts"),
    K_INT("ember.stage.maxConsecutiveAttempts", "4", 1, 1000,
          "consecutive failed attempts of one stage that fail its jobs"),
    K_DURATION("ember.stage.resubmitDelay", "200ms", 0,
               "wait after a fetch failure before resubmitting"),
    K_SIZE("ember.storage.unrollMemoryThreshold", "1m", 0, INT64_MAX,
           "storage memory a task reserves when it starts unrolling a "
           "partition of a persisted dataset (more as it grows)"),
    K_INT("ember.task.maxFailures", "4", 1, 65535,
          "failures of one task that fail the job; 1 = no retry"),
    K_DURATION("ember.task.timeout", "0", 0,
               "a task attempt running longer than this is killed and "
               "retried; 0 = none"),
};

const em_conf_key *em_conf_keys(size_t *count)
{
    if (count)
        *count = sizeof known_keys / sizeof known_keys[0];
    return known_keys;
}

const em_conf_key *em_conf_key_find(const char *key)
{
    if (!key)
        return NULL;
    size_t lo = 0, hi = sizeof known_keys / sizeof known_keys[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, known_keys[mid].name);
        if (c == 0)
            return known_keys[mid].type == EM_CONF_PREFIX ? NULL
                                                           : &known_keys[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    /* Prefixes are few: a linear pass is simplest. */
    for (size_t i = 0; i < sizeof known_keys / sizeof known_keys[0]; i++) {
        const em_conf_key *k = &known_keys[i];
        size_t n = strlen(k->name);
        if (k->type == EM_CONF_PREFIX && strncmp(key, k->name, n) == 0 &&
            key[n] != '\0')
            return k;
    }
    return NULL;
}
