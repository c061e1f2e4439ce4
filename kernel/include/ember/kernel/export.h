/*
 * ember/kernel/export.h — symbol visibility for the kernel library.
 *
 * The kernel is built with -fvisibility=hidden; only declarations marked
 * EM_API are exported from libember.so. The static testing build
 * (libember-kernel-testing.a) exports the same set.
 */
#ifndef EMBER_KERNEL_EXPORT_H
#define EMBER_KERNEL_EXPORT_H

#if defined(__GNUC__)
#define EM_API __attribute__((visibility("default")))
#else
#define EM_API
#endif

#endif /* EMBER_KERNEL_EXPORT_H */
