#include "util/openmp_env.h"

#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

/* Spins at a barrier before sleeping: a fraction of a millisecond, where libgomp's default is milliseconds. */
#define TN_GOMP_SPINCOUNT "10000"

void tn_openmp_env(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    /* started through the dynamic loader (ld.so ./tnllm ...): /proc/self/exe is ld.so, whose AT_BASE is 0 */
    if (getauxval(AT_BASE) == 0) return;
    const char *preload = getenv("LD_PRELOAD");
    if (preload && strstr(preload, "vgpreload")) return; /* Valgrind: the exec would run the program outside it */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return;
    self[n] = '\0';
    if (setenv("GOMP_SPINCOUNT", TN_GOMP_SPINCOUNT, 1) != 0) return;
    execv(self, argv);
    unsetenv("GOMP_SPINCOUNT"); /* the exec failed: go on as the process is */
}
