/*
 * runtime/sort_spill.h — a reduce-side sort larger than memory: sorted
 * runs on disk, merged at the end.
 *
 * A sort (sort_by_key, repartition_and_sort_within_partitions) gathers
 * its partition's blocks in memory; past ember.shuffle.memory it sorts
 * what it holds (runtime/keysort.h) and writes it out as a run here, then
 * goes on. At the end the runs are merged by key bytes (a heap over their
 * heads), ascending or descending, and handed out batch by batch. Run
 * files live in the executor's shuffle directory and are deleted at
 * close. No per-record allocation: each run has one read buffer.
 *
 * Threads: one task's.
 */
#ifndef EM_RUNTIME_SORT_SPILL_H
#define EM_RUNTIME_SORT_SPILL_H

#include <stddef.h>
#include <stdint.h>

#include "ember/buf.h"
#include "runtime/keysort.h"

typedef struct em_sortspill em_sortspill;

/* Spills go to files in dir (borrowed; must exist). */
ember_status em_sortspill_open(em_sortspill **out, const char *dir,
                               int descending, ember_error *err);

/* Writes refs[0..n) (sorted, ascending) as one run (in reverse when the
 * merge is descending). */
ember_status em_sortspill_add_run(em_sortspill *s, const em_keyref *refs,
                                  size_t n, ember_error *err);

/* Number of runs written. */
size_t em_sortspill_runs(const em_sortspill *s);

/* The next records of the merge, about max_bytes of them, appended to out
 * (batch framing; *count gets their number). EMBER_END when done. */
ember_status em_sortspill_next(em_sortspill *s, ember_buf *out,
                               size_t max_bytes, uint64_t *count,
                               ember_error *err);

/* Closes and deletes every run file. NULL-safe. */
void em_sortspill_close(em_sortspill *s);

#endif /* EM_RUNTIME_SORT_SPILL_H */
