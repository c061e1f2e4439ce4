/*
 * shuffle_common.h — what the shuffle manager plugins "sort" and "hash"
 * share: the manager (settings, directory, lock), file helpers, the chunk
 * format of stored blocks, the index file, per-partition files, and what
 * their writers and vtables do alike.
 *
 * docs/shuffle-format.md is the byte-level description of the files. In
 * short: a block is a sequence of chunks; a chunk is a 20-byte header
 * (raw length, stored length, flags, XXH3 checksum) and its stored bytes,
 * which decompress to records in ember_batch framing. An index file holds
 * a 64-byte header and one 32-byte entry (offset, length, count, checksum)
 * per reduce partition.
 *
 * These sources are compiled into each plugin (hidden visibility), so the
 * shuf_* names never leave a plugin. Threads: a shuf_mgr is shared by every
 * task thread of its executor; its fields are read-only after open except
 * those guarded by `lock`. Writers and their files (shuf_file, shuf_enc,
 * shuf_parts) belong to one thread at a time.
 *
 * Errors follow one pattern, so a user can find the file:
 *   "<label>: <what> <path>: <strerror>"        an operating-system error
 *   "<label>: corrupt <path> at offset N: ..."  a stored file that fails
 *                                               its checks
 * where label is "sort shuffle" or "hash shuffle".
 */
#ifndef EMBER_SHUFFLE_COMMON_H
#define EMBER_SHUFFLE_COMMON_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "ember/batch.h"
#include "ember/shuffle.h"

/* ---- sizes of the on-disk structures (docs/shuffle-format.md) ---- */

#define SHUF_CHUNK_HDR 20u      /* bytes of a chunk header */
#define SHUF_CHUNK_COMPRESSED 1u /* chunk flag: stored bytes are compressed */
#define SHUF_CHUNK_MAX 0x7fffffffu /* largest raw or stored chunk */
/* Bytes of a typical chunk, the unit of the adaptive compression. */
#define SHUF_CHUNK_MIN_TRY (64u * 1024u)
#define SHUF_INDEX_HDR 64u      /* bytes of an index header */
#define SHUF_INDEX_ENTRY 32u    /* bytes of one index entry */
#define SHUF_INDEX_VERSION 1u
#define SHUF_CODEC_NAME 32u     /* codec name field, NUL-padded */

/* ---- the manager ---- */

/*
 * One opened manager (either plugin). Settings are the host's conf with
 * defaults for zeros; dir and codec_name are private copies. `lock` guards
 * publishing and deleting map outputs and `trash_seq`.
 */
/* Mapped blocks a manager keeps for reuse, at most. */
#define SHUF_KEPT_MAX 64

typedef struct shuf_mgr {
    const ember_host_api *host;
    const char *label; /* "sort shuffle" / "hash shuffle" (static) */
    char *dir;
    uint64_t memory_bytes;
    uint64_t file_buffer;
    uint32_t bypass_threshold;
    uint32_t chunk_bytes;
    const ember_codec_vtable *codec; /* NULL: chunks stored as they are */
    void *codec_state;
    char codec_name[SHUF_CODEC_NAME]; /* "" without a codec */
    pthread_mutex_t lock;
    uint64_t trash_seq;
    int have_counters;
    uint32_t ctr_spills;      /* "shuffle.sort.spills" */
    uint32_t ctr_spill_bytes; /* "shuffle.sort.spill_bytes" */
    uint32_t ctr_corrupt;     /* "shuffle.corrupt_blocks" */
    /* mapped blocks kept for reuse (shuf_map_alloc), guarded by lock */
    struct shuf_kept {
        void *p;
        size_t bytes;
    } kept[SHUF_KEPT_MAX];
    size_t nkept;
    uint64_t kept_bytes;
} shuf_mgr;

/*
 * Opens a manager over conf->dir: copies the settings (only the conf bytes
 * the host declared; zeros become defaults: memory 64 MiB, file buffer
 * 32 KiB, chunk 64 KiB), checks that dir is a directory, registers the
 * counters, and sweeps what crashed writers of an earlier manager left
 * there (temp files, trash). *out is freed with shuf_mgr_close.
 */
ember_status shuf_mgr_open(shuf_mgr **out, const ember_host_api *host,
                           const ember_shuffle_conf *conf, const char *label,
                           ember_error *err);

/* Frees the manager (files stay). NULL is a no-op. */
void shuf_mgr_close(shuf_mgr *m);

/*
 * Deletes the directory of shuffle `shuffle_id` and everything in it:
 * renames it to a trash name under the lock (so it disappears at once),
 * then deletes the tree. EMBER_OK when there was none.
 */
ember_status shuf_mgr_remove_shuffle(shuf_mgr *m, uint64_t shuffle_id,
                                     ember_error *err);

/*
 * Moves path (a file or directory) out of sight under a trash name in the
 * manager's directory and deletes it. Call with m->lock held. Errors are
 * ignored: a leftover trash entry is swept by the next open.
 */
void shuf_mgr_trash_locked(shuf_mgr *m, const char *path);

/* Adds delta to a counter id from the manager (nothing without counters). */
void shuf_mgr_count(const shuf_mgr *m, uint32_t id, int64_t delta);

/*
 * Validates a writer's options against the header's contract (size,
 * flags, num_partitions >= 1) and copies them into *o (zeroed beyond the
 * caller's size).
 */
ember_status shuf_opts_copy(const shuf_mgr *m,
                            const ember_shuffle_writer_opts *opts,
                            ember_shuffle_writer_opts *o, ember_error *err);

/* ---- memory and paths ---- */

/* host->alloc(n); NULL when out of memory. */
void *shuf_alloc(const shuf_mgr *m, size_t n);
/* host->alloc of n zeroed bytes (n counted as a * b without overflow). */
void *shuf_calloc(const shuf_mgr *m, size_t a, size_t b);
/* host->free(p); NULL is a no-op. */
void shuf_free(const shuf_mgr *m, void *p);

/*
 * A private anonymous mapping of `bytes` (at least 2 MiB: a map task's
 * record arena) marked for huge pages, or NULL. One that a finished
 * writer gave back (shuf_map_free) is reused first: its pages are
 * already faulted in, where a fresh mapping costs a page fault and the
 * kernel's zeroing per page. Contents are undefined. Any thread.
 */
void *shuf_map_alloc(shuf_mgr *m, size_t bytes);
/* Gives back a shuf_map_alloc mapping: kept for reuse while the kept ones
 * total at most the manager's memory (ember.shuffle.memory), else
 * unmapped. shuf_mgr_close unmaps the kept ones. Any thread. */
void shuf_map_free(shuf_mgr *m, void *p, size_t bytes);

/* A printf-formatted string from host->alloc, or NULL (out of memory). */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
char *shuf_strf(const shuf_mgr *m, const char *fmt, ...);

/* The directory of a shuffle: "<dir>/shuffle_<id>" (shuf_strf). */
char *shuf_shuffle_dir(const shuf_mgr *m, uint64_t shuffle_id);

/*
 * An empty growable ember_buf whose memory comes from the host
 * (host->realloc / host->free); release it with ember_buf_release.
 */
ember_buf shuf_buf(const shuf_mgr *m);

/* The message for running out of memory; returns EMBER_ENOMEM. */
ember_status shuf_oom(const shuf_mgr *m, ember_error *err, const char *what);

/* ---- files ---- */

/*
 * Maps an errno value to a status (ENOENT: EMBER_ENOTFOUND, ENOSPC and
 * EDQUOT: EMBER_ENOSPC, ENOMEM: EMBER_ENOMEM, anything else EMBER_EIO) and
 * fills err with "<label>: <what> <path>: <strerror>".
 */
ember_status shuf_errno(const shuf_mgr *m, ember_error *err, int e,
                        const char *what, const char *path);

/* mkdir(path, 0755); an existing directory is fine. */
ember_status shuf_mkdir(const shuf_mgr *m, const char *path,
                        ember_error *err);

/*
 * Deletes path and, for a directory, everything under it. A missing path
 * is fine. Returns 0 or the first errno met (it carries on past errors).
 */
int shuf_rmtree(const char *path);

/*
 * Writes all of iov[0..n) to fd (writev, retried on partial writes and
 * EINTR). On failure fills err naming path and `what` and returns the
 * status of shuf_errno.
 */
struct iovec;
ember_status shuf_writev_all(const shuf_mgr *m, int fd, struct iovec *iov,
                             int n, const char *what, const char *path,
                             ember_error *err);

/*
 * Reads exactly n bytes at off into buf. EMBER_OK; EMBER_END when the file
 * ends first (a truncated file, *got set to what was read); or an OS error
 * through shuf_errno (`what` e.g. "reading").
 */
ember_status shuf_pread_all(const shuf_mgr *m, int fd, void *buf, size_t n,
                            uint64_t off, size_t *got, const char *what,
                            const char *path, ember_error *err);

/*
 * A file written through a buffer of `cap` bytes (cap 0: unbuffered). pos
 * counts every byte handed to shuf_file_write, buffered or written. The
 * path is owned by the file; `what` is static text for error messages
 * ("writing spill").
 */
typedef struct shuf_file {
    const struct shuf_mgr *m; /* set by shuf_file_create */
    int fd;
    char *path;
    const char *what;
    uint8_t *buf;
    size_t len;
    size_t cap;
    uint64_t pos;
} shuf_file;

/* A closed file with no path (safe to discard or release). */
#define SHUF_FILE_INIT {NULL, -1, NULL, NULL, NULL, 0, 0, 0}

/*
 * Creates (truncates) path for writing and takes ownership of path (freed
 * with the file even on failure). On failure *f stays closed.
 */
ember_status shuf_file_create(const shuf_mgr *m, shuf_file *f, char *path,
                              size_t cap, const char *what, ember_error *err);

/*
 * Appends a[0..an) then b[0..bn) (either may be empty): into the buffer
 * when both fit, otherwise one writev of the buffer and both pieces.
 */
ember_status shuf_file_write(const shuf_mgr *m, shuf_file *f, const void *a,
                             size_t an, const void *b, size_t bn,
                             ember_error *err);

/* Writes out the buffer and closes the file (the path stays in *f). */
ember_status shuf_file_finish(const shuf_mgr *m, shuf_file *f,
                              ember_error *err);

/* Closes (if open) and frees the buffer and path; the file stays. */
void shuf_file_release(const shuf_mgr *m, shuf_file *f);

/* Closes, deletes the file (if it has a path) and releases. */
void shuf_file_discard(const shuf_mgr *m, shuf_file *f);

/*
 * Appends the bytes [off, off+len) of the file at fd (path for messages)
 * to f, through a scratch buffer. A file shorter than that is EMBER_EIO.
 */
ember_status shuf_file_copy_range(const shuf_mgr *m, shuf_file *f, int fd,
                                  const char *path, uint64_t off,
                                  uint64_t len, ember_buf *scratch,
                                  ember_error *err);

/* ---- chunks ---- */

/*
 * The encoder of one writer: compression scratch and the buffer for a
 * record larger than a chunk. Zero-initialise, then shuf_enc_init.
 */
typedef struct shuf_enc {
    const shuf_mgr *m;
    ember_buf z;   /* compressed bytes of the current chunk */
    ember_buf big; /* one framed record larger than a chunk */
    /* adaptive compression: bytes in and out of the codec over the
     * chunks tried lately, and chunks left to store uncompressed before
     * trying again (data that does not compress costs no codec time) */
    uint64_t tried_in, tried_out;
    uint32_t skip;
} shuf_enc;

/* Binds the encoder to its manager (no allocation yet). */
void shuf_enc_init(shuf_enc *e, const shuf_mgr *m);

/* Frees the encoder's buffers. */
void shuf_enc_free(shuf_enc *e);

/*
 * Where encoded chunks go: a shuf_file (shuf_sink_file) or anything with
 * the same shape. Called with the header and the stored bytes.
 */
typedef ember_status (*shuf_sink_fn)(void *sink, const uint8_t *hdr,
                                     const uint8_t *data, size_t n,
                                     ember_error *err);

/* The sink of a shuf_file (sink is the shuf_file *). */
ember_status shuf_sink_file(void *sink, const uint8_t *hdr,
                            const uint8_t *data, size_t n, ember_error *err);

/*
 * A chunk being filled: framed records raw[0..len) of at most cap bytes.
 * raw is allocated on first use (cap bytes).
 */
typedef struct shuf_cbuf {
    uint8_t *raw;
    uint32_t len;
    uint32_t cap;
} shuf_cbuf;

/*
 * Appends one record to the chunk c, flushing c to the sink first when
 * the record does not fit; a record whose frame is larger than c->cap is
 * sent as a chunk of its own. EMBER_EINVAL for a record over 2 GiB.
 */
ember_status shuf_chunk_add(shuf_enc *e, shuf_cbuf *c, const uint8_t *rec,
                            size_t len, shuf_sink_fn sink, void *sink_arg,
                            ember_error *err);

/* Sends what c holds (if anything) as one chunk and empties c. */
ember_status shuf_chunk_flush(shuf_enc *e, shuf_cbuf *c, shuf_sink_fn sink,
                              void *sink_arg, ember_error *err);

/* Frees c's buffer. */
void shuf_cbuf_free(const shuf_mgr *m, shuf_cbuf *c);

/*
 * Where a block being decoded comes from, for messages and checks: the
 * file path, the block's offset in it, and the codec recorded in the index
 * (compressed chunks need it to match the manager's).
 */
typedef struct shuf_origin {
    const char *path;
    uint64_t offset;
    const char *codec; /* as recorded in the index, "" for none */
} shuf_origin;

/*
 * Decodes a whole block blk[0..len): checks every chunk (header, checksum,
 * codec, record framing), appends its records to out (ember_batch framing,
 * decompressed straight into out) and adds their number to *count.
 * EMBER_EINVAL naming the file and offset on any corruption (out->len and
 * *count restored), EMBER_ENOMEM.
 */
ember_status shuf_block_decode(const shuf_mgr *m, const shuf_origin *o,
                               const uint8_t *blk, size_t len, ember_buf *out,
                               uint64_t *count, ember_error *err);

/*
 * Reads the chunk at *off (< end) of the file at fd: verifies it and puts
 * its framed records in raw (raw->len is their length); *off moves past
 * the chunk. EMBER_END at end; EMBER_EINVAL for corruption; I/O errors as
 * shuf_pread_all. Used to stream spill files.
 */
ember_status shuf_chunk_read(const shuf_mgr *m, int fd, const char *path,
                             uint64_t *off, uint64_t end, ember_buf *stored,
                             ember_buf *raw, ember_error *err);

/* ---- index files ---- */

/* The index header as read. */
typedef struct shuf_index_hdr {
    uint32_t num_partitions;
    uint64_t data_len;
    char codec[SHUF_CODEC_NAME]; /* NUL-terminated */
} shuf_index_hdr;

/* One index entry: a block's place and size, and its record count. */
typedef struct shuf_index_entry {
    uint64_t offset;
    uint64_t length;
    uint64_t count;
} shuf_index_entry;

/*
 * Builds an index into out (which it empties first): n entries, offsets[]
 * (NULL: all 0), lengths[], counts[], data_len and the manager's codec.
 */
ember_status shuf_index_build(const shuf_mgr *m, ember_buf *out, uint32_t n,
                              const uint64_t *offsets, const uint64_t *lengths,
                              const uint64_t *counts, uint64_t data_len,
                              ember_error *err);

/*
 * Reads and checks the header of the index file at fd (its size must be
 * exactly what num_partitions implies). EMBER_EINVAL naming path for a bad
 * one; I/O errors as shuf_pread_all.
 */
ember_status shuf_index_read_hdr(const shuf_mgr *m, int fd, const char *path,
                                 shuf_index_hdr *h, ember_error *err);

/*
 * Reads and checks entry `part` (< h->num_partitions) of the index at fd:
 * its checksum, and that the block lies inside data_len (when check_len).
 */
ember_status shuf_index_read_entry(const shuf_mgr *m, int fd,
                                   const char *path, const shuf_index_hdr *h,
                                   uint32_t part, int check_len,
                                   shuf_index_entry *e, ember_error *err);

/*
 * Opens and checks the whole index at path and fills lengths[] and counts[]
 * (counts may be NULL) of its n partitions; n must match the file.
 * EMBER_ENOTFOUND when there is no file, EMBER_EINVAL when it is corrupt.
 */
ember_status shuf_index_load(const shuf_mgr *m, const char *path, uint32_t n,
                             uint64_t *lengths, uint64_t *counts,
                             ember_error *err);

/*
 * Reads the block of entry e from the data file at fd (whose size must be
 * data_size) and decodes it into out (shuf_block_decode); the number of
 * records must equal e->count.
 */
ember_status shuf_read_block_at(const shuf_mgr *m, int fd, const char *path,
                                uint64_t data_size, const shuf_index_hdr *h,
                                const shuf_index_entry *e, ember_buf *out,
                                uint64_t *count, ember_error *err);

/*
 * Builds the index of n partitions (as shuf_index_build) and writes it to
 * a new file at path (taken, as by shuf_file_create), finished; x keeps
 * the path (for publishing) until the caller releases it.
 */
ember_status shuf_index_write(const shuf_mgr *m, shuf_file *x, char *path,
                              uint32_t n, const uint64_t *offsets,
                              const uint64_t *lengths, const uint64_t *counts,
                              uint64_t data_len, ember_error *err);

/* A committed index opened by read_block. */
typedef struct shuf_index_ref {
    int fd;             /* -1 until opened; the caller closes it */
    struct stat st;     /* the file when opened (which output was read) */
    shuf_index_hdr h;
    shuf_index_entry e; /* the entry of the partition asked for */
    int corrupt;        /* set: an EMBER_EINVAL now means a broken output */
} shuf_index_ref;

/* A shuf_index_ref not opened yet. */
#define SHUF_INDEX_REF_INIT {.fd = -1}

/*
 * Opens the committed index at path (of map map_id of shuffle shuffle_id)
 * and reads its header and the entry of `partition` into *x.
 * EMBER_ENOTFOUND when there is no index; EMBER_EINVAL for a partition out
 * of range (x->corrupt clear) or a corrupt index (x->corrupt set); I/O
 * errors as shuf_errno.
 */
ember_status shuf_index_open(const shuf_mgr *m, const char *path,
                             uint64_t shuffle_id, uint32_t map_id,
                             uint32_t partition, shuf_index_ref *x,
                             ember_error *err);

/*
 * The size of the data file open at fd (path for messages) into *size;
 * EMBER_EINVAL ("corrupt <path> at offset N: the file is N bytes, its
 * index says <want>") unless it is `want` bytes.
 */
ember_status shuf_data_size(const shuf_mgr *m, int fd, const char *path,
                            uint64_t want, uint64_t *size, ember_error *err);

/* ---- one file per partition (hash writer, sort's bypass path) ---- */

/*
 * Per-partition chunk buffers, each flushed to its own file
 * "<prefix><partition><suffix>", created on the first flush. Chunks are
 * smaller than the manager's when many partitions would otherwise exceed
 * memory_bytes. With many partitions, files are opened for each flush
 * instead of being kept open (bounded descriptors).
 */
/* One partition of a shuf_parts set. */
/* A finished chunk held in memory (shuf_parts' hold mode). */
typedef struct shuf_held {
    struct shuf_held *next;
    size_t len; /* bytes of data: the chunk's header and stored bytes */
    uint8_t data[];
} shuf_held;

/* A mapped block the held chunks are carved from. */
typedef struct shuf_hold_blk {
    struct shuf_hold_blk *next;
    size_t used, cap; /* bytes of the block, this header included */
} shuf_hold_blk;

typedef struct shuf_part {
    shuf_cbuf c;
    int fd;         /* -1 when not open */
    int created;    /* the file exists */
    uint64_t bytes; /* stored bytes written (or held) */
    uint64_t count; /* records added */
    shuf_held *held, *held_tail; /* chunks held, in order */
} shuf_part;

/* The set: its files' names, chunk size and partitions. */
typedef struct shuf_parts {
    shuf_mgr *m;
    shuf_enc *enc;
    char *prefix;
    const char *suffix;
    char *pathbuf; /* a partition's path, built when needed */
    size_t pathcap;
    const char *what;
    uint32_t n;
    uint32_t chunk;
    int keep_open;
    shuf_part *p;
    uint64_t hold;         /* hold mode: bytes of chunks kept in memory
                              before all go to the files (0: files only) */
    uint64_t held;         /* bytes held now */
    int spilled;           /* the held chunks went to the files */
    shuf_hold_blk *blocks; /* what held chunks live in */
} shuf_parts;

/*
 * Prepares n partitions writing to "<prefix><r><suffix>" (prefix is taken
 * and freed by shuf_parts_free; suffix and what are static). enc is the
 * writer's encoder, borrowed. With hold > 0 (hold mode), finished chunks
 * stay in memory until they pass hold bytes together; only then are they
 * written to the partitions' files (and every later chunk too), so that
 * a map output that fits is written once, by shuf_parts_write_held.
 */
ember_status shuf_parts_init(shuf_parts *ps, shuf_mgr *m, shuf_enc *enc,
                             uint32_t n, char *prefix, const char *suffix,
                             const char *what, uint64_t hold,
                             ember_error *err);

/* Whether every chunk is still held in memory (after shuf_parts_finish:
 * then no partition file exists and shuf_parts_write_held writes them). */
int shuf_parts_all_held(const shuf_parts *ps);

/* Appends partition r's held chunks, in order, to f. */
ember_status shuf_parts_write_held(shuf_parts *ps, uint32_t r, shuf_file *f,
                                   ember_error *err);

/* Adds one record to partition r (< n). */
ember_status shuf_parts_add(shuf_parts *ps, uint32_t r, const uint8_t *rec,
                            size_t len, ember_error *err);

/*
 * Flushes every partition and closes the files; lengths[r] and counts[r]
 * (counts may be NULL) get each partition's stored bytes and records.
 */
ember_status shuf_parts_finish(shuf_parts *ps, uint64_t *lengths,
                               uint64_t *counts, ember_error *err);

/* The path of partition r's file (shuf_strf), or NULL. */
char *shuf_parts_path(const shuf_parts *ps, uint32_t r);

/* Deletes every file created (for abort and failures). */
void shuf_parts_remove(shuf_parts *ps);

/* Closes files and frees memory (files stay). Safe on a zeroed struct. */
void shuf_parts_free(shuf_parts *ps);

/* ---- what both managers' writers share ---- */

/*
 * Vtable entries both managers use as they are, with `label` naming the
 * manager in the messages for a missing state or writer (where there is
 * no manager to take it from).
 */
ember_status shuf_vt_open(const char *label, const ember_host_api *host,
                          const ember_shuffle_conf *conf, void **state,
                          ember_error *err);
ember_status shuf_vt_remove_shuffle(const char *label, void *state,
                                    uint64_t shuffle_id, ember_error *err);

typedef struct shuf_writer shuf_writer;

/* The parts of a writer that differ between the managers. */
typedef struct shuf_writer_ops {
    /* Adds one record to partition p (already checked < num_partitions).
     * Any error makes the caller fail the writer (shuf_writer_fail). */
    ember_status (*add)(shuf_writer *w, uint32_t p, const uint8_t *rec,
                        size_t len, ember_error *err);
    /* Deletes every file the writer has written (its first failure). */
    void (*discard)(shuf_writer *w);
} shuf_writer_ops;

/*
 * The head of a writer of either manager: its first member, so a pointer
 * to the plugin's writer is a pointer to its shuf_writer. Made by
 * shuf_writer_open; owned by the task thread that opened the writer.
 */
struct shuf_writer {
    shuf_mgr *m;
    const shuf_writer_ops *ops; /* static */
    ember_shuffle_writer_opts o;
    ember_status failed; /* EMBER_OK, or why the writer is unusable */
    char *base;          /* "<dir>/shuffle_<s>/map_<m>" */
    shuf_enc enc;
};

/*
 * The start of the vtable's writer_open: checks state (the manager) and
 * out (*out is set to NULL), allocates a zeroed writer of `size` bytes
 * (size >= sizeof(shuf_writer), the shuf_writer first), copies and
 * validates opts, sets base and the encoder, and makes the shuffle's
 * directory. *w is the new writer, to be finished by the plugin and freed
 * with shuf_writer_free; on failure *w is NULL.
 */
ember_status shuf_writer_open(const char *label, void *state, void **out,
                              size_t size, const shuf_writer_ops *ops,
                              const ember_shuffle_writer_opts *opts,
                              shuf_writer **w, ember_error *err);

/* Frees base, the encoder and the writer itself (all `size` bytes); the
 * plugin frees its own fields first. NULL is a no-op. */
void shuf_writer_free(shuf_writer *w);

/*
 * Marks w failed with s (an error) and, the first time, deletes what it
 * wrote (ops->discard); returns s. EMBER_OK is returned as it is.
 */
ember_status shuf_writer_fail(shuf_writer *w, ember_status s);

/*
 * The vtable's write for both managers: checks the writer (label names the
 * manager when w is NULL), that it did not fail before, and the partition,
 * then adds each record of records to it. A malformed batch or a failed
 * add fails the writer; a bad argument does not.
 */
ember_status shuf_writer_write(const char *label, shuf_writer *w,
                               uint32_t partition, const ember_batch *records,
                               ember_error *err);

/*
 * The vtable's write_tagged for both managers: as shuf_writer_write, with
 * record i going to partitions[i]. Every partition is checked before any
 * record is added; a batch holding fewer or more records than its count
 * fails the writer.
 */
ember_status shuf_writer_write_tagged(const char *label, shuf_writer *w,
                                      const ember_batch *records,
                                      const uint32_t *partitions,
                                      ember_error *err);

/*
 * The checks that start writer_commit (w is not NULL): the writer did not
 * fail before and lengths is there. Then *cnt is counts, or a zeroed
 * array of num_partitions when counts is NULL (the caller frees it with
 * shuf_free when it is not counts).
 */
ember_status shuf_writer_commit_begin(shuf_writer *w, const uint64_t *lengths,
                                      uint64_t *counts, uint64_t **cnt,
                                      ember_error *err);

/* ---- little-endian helpers ---- */

/* Stores v at p[0..4), least significant byte first. */
static inline void shuf_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Stores v at p[0..8), least significant byte first. */
static inline void shuf_put_u64(uint8_t *p, uint64_t v)
{
    shuf_put_u32(p, (uint32_t)v);
    shuf_put_u32(p + 4, (uint32_t)(v >> 32));
}

/* Loads the little-endian u32 at p[0..4). */
static inline uint32_t shuf_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Loads the little-endian u64 at p[0..8). */
static inline uint64_t shuf_get_u64(const uint8_t *p)
{
    return (uint64_t)shuf_get_u32(p) | (uint64_t)shuf_get_u32(p + 4) << 32;
}

/* Bytes of the uvarint frame of a record of len bytes. */
static inline size_t shuf_frame_len(size_t len)
{
    size_t n = 1;
    while (len >= 0x80) {
        len >>= 7;
        n++;
    }
    return n;
}

#endif /* EMBER_SHUFFLE_COMMON_H */
