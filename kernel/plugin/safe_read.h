/*
 * safe_read.h — copying from memory a plugin points at, without trusting
 * the pointer. A bad address makes the copy fail; it never faults.
 * Internal to the loader.
 */
#ifndef EM_PLUGIN_SAFE_READ_H
#define EM_PLUGIN_SAFE_READ_H

#include <stddef.h>

/* Copies n bytes from src to dst. 0 on success, -1 if any byte of
 * src[0..n) is unreadable (dst then holds garbage). */
int em_safe_read(void *dst, const void *src, size_t n);

/*
 * Reads the NUL-terminated string at src into a new malloc'd copy (*out).
 * 0 on success; -1 unreadable (or src NULL); -2 longer than max bytes;
 * -3 out of memory. *out is NULL on failure.
 */
int em_safe_strdup(const char *src, size_t max, char **out);

#endif /* EM_PLUGIN_SAFE_READ_H */
