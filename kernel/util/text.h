/*
 * util/text.h — small helpers the kernel modules share: copying strings
 * and reading the wall clock for the state store's timestamps.
 */
#ifndef EMBER_KERNEL_UTIL_TEXT_H
#define EMBER_KERNEL_UTIL_TEXT_H

#include <stdint.h>

/* A malloc'd copy of s; NULL when s is NULL or memory runs out. */
char *em_strdup(const char *s);

/* Wall-clock milliseconds since the Unix epoch (for stored timestamps;
 * scheduling uses the loop's monotonic clock). */
int64_t em_wall_ms(void);

#endif /* EMBER_KERNEL_UTIL_TEXT_H */
