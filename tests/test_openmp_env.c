/* test_openmp_env: tn_openmp_env (util/openmp_env.h) runs the program again
 * with GOMP_SPINCOUNT bounded, once, and leaves a policy the user chose.
 *
 * Each case is a child process that clears or sets the variables, then
 * calls tn_openmp_env with the argv "<this test> report": where it execs,
 * the new process image (this program again) prints the GOMP_SPINCOUNT it
 * sees and exits; where it returns, the child prints its own. The parent
 * reads that line from a pipe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "util/openmp_env.h"

/* What a child with OMP_WAIT_POLICY and GOMP_SPINCOUNT as given (NULL:
 * unset) reports: "exec <value>" from the image tn_openmp_env started,
 * "same <value>" when it returned. */
static void child_report(const char *wait_policy, const char *spin_count, char *line, size_t cap) {
    int fds[2];
    line[0] = '\0';
    if (pipe(fds) != 0) return;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        unsetenv("OMP_WAIT_POLICY");
        unsetenv("GOMP_SPINCOUNT");
        if (wait_policy) setenv("OMP_WAIT_POLICY", wait_policy, 1);
        if (spin_count) setenv("GOMP_SPINCOUNT", spin_count, 1);
        char self[] = "test_openmp_env", report[] = "report";
        char *argv[] = {self, report, NULL};
        tn_openmp_env(argv);
        const char *seen = getenv("GOMP_SPINCOUNT");
        printf("same %s\n", seen ? seen : "unset");
        fflush(stdout);
        _exit(0);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    if (!in || !fgets(line, (int)cap, in)) line[0] = '\0';
    if (in) fclose(in);
    waitpid(pid, NULL, 0);
    line[strcspn(line, "\n")] = '\0';
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "report") == 0) { /* the image tn_openmp_env started */
        const char *seen = getenv("GOMP_SPINCOUNT");
        printf("exec %s\n", seen ? seen : "unset");
        return 0;
    }
    char line[256];
    child_report(NULL, NULL, line, sizeof line);
    CHECK(strcmp(line, "exec 10000") == 0, "no policy chosen: want the program run again with 10000, got '%s'", line);
    child_report("passive", NULL, line, sizeof line);
    CHECK(strcmp(line, "same unset") == 0, "OMP_WAIT_POLICY chosen: want no exec, got '%s'", line);
    child_report(NULL, "123", line, sizeof line);
    CHECK(strcmp(line, "same 123") == 0, "GOMP_SPINCOUNT chosen: want it kept, no exec, got '%s'", line);
    return TEST_DONE(argv[0]);
}
