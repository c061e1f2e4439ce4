/*
 * storage_offheap.c — the off-heap tier: plugin "offheap", component
 * "offheap.store".
 *
 * Each block is a POSIX shared-memory object (on Linux a file in /dev/shm)
 * named "/ember-<h>-<id>", where <h> is the XXH3-64 of the store's `dir`
 * string in 16 lowercase hex digits: stores opened with the same dir, in
 * any process on the host, see the same blocks. The objects outlive the
 * process that wrote them, so the blocks of a crashed executor stay
 * readable by another executor that opens the tier with the same dir.
 * (dir is used only as a name: nothing is created in the file system.)
 *
 * An object holds the stored form of tier_block.h: a 48-byte header and
 * the batch bytes, with XXH3-64 checksums. A shared-memory object cannot
 * be written under a temporary name and renamed, so its header carries a
 * state word instead: put sizes the object (posix_fallocate, so a full
 * /dev/shm is EMBER_ENOSPC now rather than SIGBUS later), maps it, writes
 * the payload and the header, and stores TIER_BLOCK_COMPLETE in the state
 * word last, with release ordering; get loads it with acquire ordering. A
 * block whose writer crashed (or is still writing) reads as EMBER_EINVAL,
 * never as data. put of an existing id unlinks the old object and creates
 * a new one, so a reader that has the old one open keeps reading it whole;
 * a put that fails (EMBER_ENOSPC when /dev/shm is full) therefore leaves
 * no block under the id, not the old one.
 *
 * Lifetime: close does NOT remove the objects (they must survive a
 * crash), and the vtable has no slot to drop every block of a dir: the
 * block manager removes blocks by id (it knows which it stored), and an
 * executor's leftovers are the files /dev/shm/ember-<h>-* for an operator
 * or a cleanup job to remove.
 *
 * Threads: put, get and remove may run on any number of threads (and
 * processes) at once; the store itself is read-only after open. A reader
 * relies on nobody shrinking an object it has mapped: no put does (it
 * replaces objects, never resizes them).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "tier_block.h"

#if ATOMIC_INT_LOCK_FREE != 2
#error "offheap.store needs lock-free 32-bit atomics (shared across processes)"
#endif

#define LABEL "offheap.store"
/* "/ember-" + 16 hex digits + "-" */
#define OH_PREFIX_LEN 24u
/* Bytes of an object name: prefix, id, NUL (well under NAME_MAX). */
#define OH_NAME_MAX (OH_PREFIX_LEN + TIER_ID_MAX + 1u)
/* put retries when another put of the same id recreates the object
 * between its unlink and its create. */
#define OH_CREATE_TRIES 8

/* An opened store: only the name prefix of its objects. */
typedef struct oh_store {
    const ember_host_api *host;
    char prefix[OH_PREFIX_LEN + 1];
} oh_store;

/* The state word of a mapped block. */
static _Atomic uint32_t *oh_state_word(uint8_t *p)
{
    return (_Atomic uint32_t *)(void *)(p + TIER_BLOCK_STATE_OFF);
}

/* The object name of block id into name[OH_NAME_MAX]. */
static void oh_name(const oh_store *st, const char *id, char *name)
{
    snprintf(name, OH_NAME_MAX, "%s%s", st->prefix, id);
}

/* open: derives the name prefix from dir. */
static ember_status oh_open(const ember_host_api *host, const char *dir,
                            void **state, ember_error *err)
{
    ember_status s = tier_open_check(LABEL, host, dir, 1, state, err);
    if (s != EMBER_OK)
        return s;
    oh_store *st = host->alloc(sizeof *st);
    if (!st)
        return ember_errorf(err, EMBER_ENOMEM, LABEL ": open: out of memory");
    st->host = host;
    snprintf(st->prefix, sizeof st->prefix, "/ember-%016llx-",
             (unsigned long long)tier_sum(dir, strlen(dir)));
    *state = st;
    return EMBER_OK;
}

/* close: frees the store; the blocks stay (see the file comment). */
static void oh_close(void *state)
{
    oh_store *st = state;
    if (st)
        st->host->free(st);
}

/* Creates object name exclusively, unlinking an old one of the same name
 * (the block being replaced); fd or -1 with errno set. */
static int oh_create(const char *name)
{
    for (int i = 0; i < OH_CREATE_TRIES; i++) {
        int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd >= 0 || errno != EEXIST)
            return fd;
        if (shm_unlink(name) != 0 && errno != ENOENT)
            return -1;
    }
    errno = EEXIST;
    return -1;
}

/* put: a new object, sized, filled, and marked complete last. */
static ember_status oh_put(void *state, const char *id,
                           const ember_batch *data, ember_error *err)
{
    oh_store *st = state;
    char name[OH_NAME_MAX];
    char where[OH_NAME_MAX + 32];
    uint8_t h[TIER_BLOCK_HDR];
    uint8_t *p = MAP_FAILED;
    int fd = -1;
    int e;
    const char *what;
    ember_status s = tier_put_check(LABEL, st, id, data, err);
    if (s != EMBER_OK)
        return s;
    if (data->len > SIZE_MAX - TIER_BLOCK_HDR ||
        (uint64_t)(off_t)(data->len + TIER_BLOCK_HDR) !=
            (uint64_t)(data->len + TIER_BLOCK_HDR))
        return ember_errorf(err, EMBER_ENOSPC,
                            LABEL ": put %s: block of %zu bytes is too large",
                            id, data->len);
    size_t size = data->len + TIER_BLOCK_HDR;
    oh_name(st, id, name);
    tier_header_encode(h, data->count, data->data, data->len, 0);

    fd = oh_create(name);
    if (fd < 0) /* ENOENT: no /dev/shm, not a missing block */
        return tier_errno_io(err, errno, LABEL,
                             "creating shared-memory object", name);
    what = "sizing";
    if ((e = posix_fallocate(fd, 0, (off_t)size)) != 0)
        goto fail;
    what = "mapping";
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        e = errno;
        goto fail;
    }
    /* The object starts zeroed, so its state word says "incomplete"
     * until the release store below publishes everything before it. */
    if (data->len)
        memcpy(p + TIER_BLOCK_HDR, data->data, data->len);
    memcpy(p, h, TIER_BLOCK_STATE_OFF);
    memcpy(p + TIER_BLOCK_STATE_OFF + 4, h + TIER_BLOCK_STATE_OFF + 4,
           TIER_BLOCK_HDR - TIER_BLOCK_STATE_OFF - 4);
    atomic_store_explicit(oh_state_word(p), TIER_BLOCK_COMPLETE,
                          memory_order_release);
    munmap(p, size);
    close(fd);
    return EMBER_OK;
fail:
    if (p != MAP_FAILED)
        munmap(p, size);
    close(fd);
    (void)shm_unlink(name);
    snprintf(where, sizeof where, "shared-memory object %s", name);
    return tier_put_errno(err, e, LABEL, what, where, id,
                          "in shared memory", size, NULL);
}

/* get: maps the object read-only, checks state, header and checksum of
 * the copy it appends (so what was checked is what the caller gets). */
static ember_status oh_get(void *state, const char *id, ember_buf *out,
                           uint64_t *count, ember_error *err)
{
    oh_store *st = state;
    char name[OH_NAME_MAX];
    char where[OH_NAME_MAX + 32];
    tier_header hdr = {0, 0, 0};
    struct stat sb;
    uint8_t *p = MAP_FAILED;
    uint8_t *dst;
    size_t size = 0;
    ember_status s = tier_get_check(LABEL, st, id, out, err);
    if (s != EMBER_OK)
        return s;
    oh_name(st, id, name);
    snprintf(where, sizeof where, "shared-memory object %s", name);
    int fd = shm_open(name, O_RDONLY, 0);
    if (fd < 0)
        return tier_lookup_errno(err, errno, LABEL, id,
                                 "shared-memory object", name, "opening",
                                 where);
    if (fstat(fd, &sb) != 0) {
        s = tier_errno(err, errno, LABEL, "reading", where, NULL);
        goto done;
    }
    if ((s = tier_size_check((long long)sb.st_size, LABEL, where, err)) !=
        EMBER_OK)
        goto done;
    if ((uint64_t)(size_t)sb.st_size != (uint64_t)sb.st_size) {
        s = ember_errorf(err, EMBER_ENOMEM,
                         LABEL ": %s: %lld bytes do not fit in memory",
                         where, (long long)sb.st_size);
        goto done;
    }
    size = (size_t)sb.st_size;
    p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        s = tier_errno(err, errno, LABEL, "mapping", where, NULL);
        goto done;
    }
    if (atomic_load_explicit(oh_state_word(p), memory_order_acquire) !=
        TIER_BLOCK_COMPLETE) {
        s = ember_errorf(err, EMBER_EINVAL,
                         LABEL ": %s is incomplete: its writer did not "
                         "finish it (it may have crashed)",
                         where);
        goto done;
    }
    s = tier_header_decode(p, (uint64_t)size, &hdr, LABEL, where, err);
    if (s != EMBER_OK)
        goto done;
    s = tier_payload_reserve(out, &hdr, &dst, LABEL, id, err);
    if (s != EMBER_OK)
        goto done;
    if (dst)
        memcpy(dst, p + TIER_BLOCK_HDR, (size_t)hdr.len);
    s = tier_payload_commit(out, &hdr, dst, count, LABEL, where, err);
done:
    if (p != MAP_FAILED)
        munmap(p, size);
    close(fd);
    return s;
}

/* remove: unlinks the object (a reader that has it open keeps it). */
static ember_status oh_remove(void *state, const char *id, ember_error *err)
{
    oh_store *st = state;
    char name[OH_NAME_MAX];
    ember_status s = tier_remove_check(LABEL, st, id, err);
    if (s != EMBER_OK)
        return s;
    oh_name(st, id, name);
    if (shm_unlink(name) == 0)
        return EMBER_OK;
    return tier_lookup_errno(err, errno, LABEL, id, "shared-memory object",
                             name, "removing shared-memory object", name);
}

static const ember_storage_vtable oh_vtable = {
    .flags = EMBER_STORAGE_MEMORY | EMBER_STORAGE_OFF_HEAP,
    .replication = 1,
    .open = oh_open,
    .close = oh_close,
    .put = oh_put,
    .get = oh_get,
    .remove = oh_remove,
};

static const ember_component oh_components[] = {
    EMBER_STORAGE_COMPONENT("store",
                            "storage tier: POSIX shared memory that "
                            "outlives the executor",
                            &oh_vtable),
};

EMBER_PLUGIN(offheap, "0.1.0", "off-heap (shared memory) storage tier",
             "Apache-2.0", oh_components, NULL, NULL);
