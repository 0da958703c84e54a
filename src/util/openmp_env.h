/* openmp_env.h: OpenMP's waiting for a process that may share its cores.
 *
 * libgomp's threads busy-wait at every barrier, up to GOMP_SPINCOUNT
 * (default 300000) pause instructions, milliseconds on recent x86 cores,
 * before they sleep. On cores that other processes also use, a thread spins
 * through its slice while the one it waits for is not running: every barrier
 * then costs a time slice (measured on a 2-core machine running a build:
 * decoding the demo model at 6.5 tokens/s instead of 2400, once in three
 * runs; 10000 spins gave 2750-3450 tokens/s every time, and on idle cores
 * the same speed as the default, training and decoding). libgomp reads
 * GOMP_SPINCOUNT once, as it loads, before main: so tn_openmp_env runs the
 * program again, once, with GOMP_SPINCOUNT=10000, unless the user chose a
 * policy (OMP_WAIT_POLICY or GOMP_SPINCOUNT set), the process runs under
 * Valgrind (whose tools an exec would leave) or was started through the
 * dynamic loader (where /proc/self/exe is the loader).
 */
#ifndef TN_UTIL_OPENMP_ENV_H
#define TN_UTIL_OPENMP_ENV_H

/* Returns (doing nothing) when the policy is already chosen or the exec
 * fails; else does not return. Call first thing in main, with main's argv. */
void tn_openmp_env(char **argv);

#endif
