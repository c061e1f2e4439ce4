/*
 * dag/base64.h — base64 (RFC 4648, standard alphabet, '=' padding) for the
 * argument blobs of the plan format. The decoder accepts only the canonical
 * form (padded, no whitespace, unused bits zero), so decoding and encoding
 * again gives back the same text. Pure functions; any thread.
 */
#ifndef EMBER_KERNEL_DAG_BASE64_H
#define EMBER_KERNEL_DAG_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "ember/abi.h"
#include "ember/buf.h"

/* Length of the encoding of n bytes, or SIZE_MAX if it would not fit. */
size_t em_base64_encoded_len(size_t n);

/*
 * Appends the encoding of src[0..n) to out (no NUL). src may be NULL when n
 * is 0. EMBER_ENOMEM / EMBER_ENOSPC from the buffer, out then unchanged.
 */
ember_status em_base64_encode(ember_buf *out, const uint8_t *src, size_t n);

/*
 * Decodes text[0..n) into a new malloc'd buffer: *out (NULL when the result
 * is empty) and *out_len. On failure *out is NULL and:
 *   EMBER_EINVAL  not canonical base64; *bad_at (if not NULL) is the offset
 *                 of the first offending character (n for a bad length);
 *   EMBER_ENOSPC  the decoded length would exceed max_len;
 *   EMBER_ENOMEM.
 */
ember_status em_base64_decode(uint8_t **out, size_t *out_len, const char *text,
                              size_t n, size_t max_len, size_t *bad_at);

#endif /* EMBER_KERNEL_DAG_BASE64_H */
