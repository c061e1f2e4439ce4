/*
 * util/bigbuf.h — growable buffers for data that reaches tens of MiB (a
 * reduce task's gathered blocks, a sort's arena): past 2 MiB they live in
 * their own mapping, grown with mremap (no copy) and marked for
 * transparent huge pages, so that filling them faults once per 2 MiB
 * instead of once per 4 KiB. Smaller ones are ordinary heap memory.
 * Released with ember_buf_release like any growable buffer. Any thread;
 * one buffer is one thread's at a time.
 */
#ifndef EM_UTIL_BIGBUF_H
#define EM_UTIL_BIGBUF_H

#include <stdbool.h>

#include "ember/buf.h"

/* An empty big buffer. */
ember_buf em_bigbuf(void);

/* Its grow function (ember_buf_grow_fn): min_cap 0 frees. On a thread
 * that keeps (em_bigbuf_keep), a released mapping is kept for its next
 * big buffers (a few, 256 MiB at most), which then start without page
 * faults. */
ember_status em_bigbuf_grow(ember_buf *b, size_t min_cap);

/* Whether this thread keeps released mappings (off by default; a thread
 * that turns it on drops them when it goes idle, as executor workers do).
 * Off drops them. */
void em_bigbuf_keep(bool on);
/* Bytes of mappings this thread keeps (0 when none). */
size_t em_bigbuf_kept_bytes(void);
/* Unmaps the mappings this thread keeps: call when it goes idle. */
void em_bigbuf_drop_kept(void);

#endif /* EM_UTIL_BIGBUF_H */
