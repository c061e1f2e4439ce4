/*
 * util/sha256.h — SHA-256 (FIPS 180-4), for naming plugin files by their
 * contents: a client ships a plugin with its digest and emberd stores it
 * as <hex digest>.so.
 *
 * Threads: an em_sha256 context belongs to one thread at a time; the
 * functions share nothing else.
 */
#ifndef EMBER_KERNEL_UTIL_SHA256_H
#define EMBER_KERNEL_UTIL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "ember/abi.h"

/* Bytes in a digest, and characters in its hex form (without the NUL). */
#define EM_SHA256_LEN 32
#define EM_SHA256_HEX_LEN 64

/* A hash being computed. Fields are the implementation's. */
typedef struct em_sha256 {
    uint32_t h[8];
    uint64_t total;     /* bytes hashed so far */
    uint8_t block[64];  /* a partial block */
    size_t used;        /* bytes in block */
} em_sha256;

/* Starts a hash. */
void em_sha256_init(em_sha256 *c);

/* Hashes data[0..len) (data may be NULL when len is 0). */
void em_sha256_update(em_sha256 *c, const void *data, size_t len);

/* Finishes the hash into out; c must be initialised again before reuse. */
void em_sha256_final(em_sha256 *c, uint8_t out[EM_SHA256_LEN]);

/* The digest of data[0..len) as 64 lowercase hex digits and a NUL. */
void em_sha256_hex(const void *data, size_t len,
                   char out[EM_SHA256_HEX_LEN + 1]);

/* Writes a digest as 64 lowercase hex digits and a NUL. */
void em_sha256_to_hex(const uint8_t digest[EM_SHA256_LEN],
                      char out[EM_SHA256_HEX_LEN + 1]);

/*
 * The digest of the file at path as hex. EMBER_ENOTFOUND when it does not
 * exist, EMBER_EIO when it cannot be read; err says which file and why.
 */
ember_status em_sha256_file_hex(const char *path,
                                char out[EM_SHA256_HEX_LEN + 1],
                                ember_error *err);

/* Nonzero when s is exactly 64 lowercase hex digits. */
int em_sha256_is_hex(const char *s);

#endif /* EMBER_KERNEL_UTIL_SHA256_H */
