/*
 * ember/service.h — asking a running emberd about its jobs, as
 * `ember status`, `ember list` and `ember kill` do. Sessions on an
 * ember:// master (ember/ember.h) submit jobs; these calls inspect and
 * cancel them from anywhere, without opening an application.
 *
 * master is "ember://HOST:PORT". Each call connects (waiting up to 10 s
 * for the service), asks, and disconnects. Errors: "cannot connect to
 * emberd at ember://h:p: ..." when nothing answers; the service's own
 * status and message otherwise (EMBER_ENOTFOUND "no job 42 on this
 * emberd", EMBER_EINVAL "job 42 is not running (SUCCEEDED)").
 * Threads: any thread.
 */
#ifndef EMBER_SERVICE_H
#define EMBER_SERVICE_H

#include <stdint.h>

#include "ember/abi.h"
#include "ember/kernel/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The job's state as a JSON object (NUL-terminated, malloc'd into *json;
 * free it): job_id, app_id, app, description, pool, group, status
 * (RUNNING, SUCCEEDED, FAILED, CANCELLED, INTERRUPTED), error, submit_ms,
 * end_ms, "stages" (one object per stage attempt: stage_id, attempt,
 * kind, name, tasks, status, failure) and "tasks" (counts by status, and
 * total).
 */
EM_API ember_status ember_service_status(const char *master,
                                         uint64_t job_id, char **json,
                                         ember_error *err);

/* Every job the service's state store holds (only RUNNING ones with
 * running_only), oldest first, as a JSON array of the objects
 * ember_service_status gives without "stages" and "tasks". */
EM_API ember_status ember_service_list(const char *master, int running_only,
                                       char **json, ember_error *err);

/* Cancels a running job of any application: its queued tasks never
 * start and running ones are killed; its driver sees "cancelled". */
EM_API ember_status ember_service_kill(const char *master, uint64_t job_id,
                                       ember_error *err);

#ifdef __cplusplus
}
#endif
#endif /* EMBER_SERVICE_H */
