/*
 * compiler.h: attributes that differ between the toolchains branchsync is
 * built with (GCC and Clang on Linux, mingw-w64 GCC for Windows).
 */
#ifndef BS_COMPILER_H
#define BS_COMPILER_H

/*
 * BS_PRINTF(fmt, args): the function takes a printf format. mingw-w64 with
 * __USE_MINGW_ANSI_STDIO prints C99 formats (%zu, %lld), which GCC checks
 * as gnu_printf there; plain "printf" would mean Microsoft's dialect.
 */
#if defined(__MINGW32__)
#define BS_PRINTF(fmt, args) __attribute__((format(gnu_printf, fmt, args)))
#else
#define BS_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#endif

#endif /* BS_COMPILER_H */
