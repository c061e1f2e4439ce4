/*
 * runtime/block_report.h — what a task tells the kernel about persisted
 * blocks: each block its executor stored or dropped while the task ran
 * (runtime/ops_cache.c notes them; evictions a store caused are noted too,
 * whichever dataset they belong to). The executor sends the encoded
 * report in the `blocks` blob of the task's FINISHED update (kernel/msg/
 * msg.h); the kernel decodes it and keeps where each block lives
 * (kernel/dag/block_locs.h). A location is a hint: a task placed on an
 * executor that lost the block computes the partition again.
 *
 * Wire format, version 1 (varints as kernel/msg/msg.h: unsigned LEB128,
 * minimal, at most 10 bytes):
 *   report = "EMBR" version:u8(1) count:varint then count entries, each:
 *            app:varint dataset:varint partition:varint(u32)
 *            event:u8 (1 stored, 2 dropped)
 *            tier:u8 (stored: 1 memory, 2 disk, 3 off-heap; dropped: 0)
 *            bytes:varint (stored: the size in that tier; dropped: 0)
 * Nothing may follow the last entry. An empty report is not sent.
 *
 * Threads: a report belongs to the one task (thread) that fills it; the
 * codec is reentrant.
 */
#ifndef EM_RUNTIME_BLOCK_REPORT_H
#define EM_RUNTIME_BLOCK_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "ember/abi.h"
#include "ember/buf.h"
#include "runtime/block_mgr.h"

/* Most entries a report may hold (the decoder refuses more). */
#define EM_BLOCK_REPORT_MAX ((size_t)1 << 20)

/* What happened to a block. */
typedef enum em_block_event {
    EM_BLOCK_STORED = 1,  /* it is now in `tier`, taking `bytes` */
    EM_BLOCK_DROPPED = 2  /* the executor no longer holds it */
} em_block_event;

/* One block's news. tier is an em_block_where (EM_BLOCK_NOWHERE when
 * dropped). */
typedef struct em_block_entry {
    uint64_t app, dataset;
    uint32_t partition;
    uint8_t event; /* em_block_event */
    uint8_t tier;  /* em_block_where */
    uint64_t bytes;
} em_block_entry;

/*
 * A list of entries, at most one per block (a later note about a block
 * replaces the earlier one: the last word is the truth). A zeroed report
 * is empty and valid. `lost` is set when a note could not be kept (out of
 * memory): the kernel then misses a hint, nothing worse.
 */
typedef struct em_block_report {
    em_block_entry *e;
    size_t n, cap;
    int lost;
} em_block_report;

/* Adds or replaces the entry for (e->app, e->dataset, e->partition). */
void em_block_report_add(em_block_report *r, const em_block_entry *e);

/*
 * Notes what a put of (app, dataset, partition) did (res from
 * em_block_mgr_put / em_block_unroll_finish): the block stored where it
 * went (nothing when it went nowhere), and every block the put evicted —
 * moved to disk (stored on the disk tier) or dropped. Evicted blocks are
 * named by the manager's dataset keys (app << 32 | dataset, as
 * runtime/ops_cache.c makes them). r NULL: nothing.
 */
void em_block_report_note_put(em_block_report *r, uint64_t app,
                              uint64_t dataset, uint32_t partition,
                              const em_block_put_result *res);

/* Frees the entries and zeroes r. NULL-safe. */
void em_block_report_release(em_block_report *r);

/*
 * Appends r's encoding to out. EMBER_EINVAL for an entry the format
 * cannot carry (an unknown event or tier, a tier or bytes given with
 * dropped); else as ember_buf_reserve. On failure out is as it was.
 */
ember_status em_block_report_encode(const em_block_report *r, ember_buf *out);

/*
 * Decodes d[0..n) into *out (zeroed first; release it after).
 * EMBER_EINVAL with err naming the entry, the field and its byte offset
 * when the report is malformed (bad magic, short, a varint too long or
 * not minimal, a value out of range, an event/tier mismatch, more than
 * EM_BLOCK_REPORT_MAX entries, trailing bytes); EMBER_EVERSION for another
 * version; EMBER_ENOMEM. On failure *out is empty.
 */
ember_status em_block_report_decode(const uint8_t *d, size_t n,
                                    em_block_report *out, ember_error *err);

/* "MEMORY", "DISK", "OFF_HEAP" for a tier (em_block_where), "NONE"
 * otherwise: the words of the state store's blocks.tier column. */
const char *em_block_tier_name(uint8_t tier);

#endif /* EM_RUNTIME_BLOCK_REPORT_H */
