/* test_fileio: util/fileio.h's durable renames, its removal of the
 * temporary files of killed writes, and tn_remove_if_present.
 *
 * A sync cannot be seen in the files, so this binary defines fsync itself:
 * linked before libc, it receives every fsync of the library, records the
 * file synced (device, inode, whether a directory, its size) and whether
 * the watched final path was in place then, and makes the system call;
 * fail_directory_syncs makes a directory's fail with EIO. So a commit is
 * seen to sync the directory holding the file ("." for a bare name) after
 * the rename, a failed directory sync to be an error naming the directory
 * with the new file in place, and a plot (gnuplot writes the SVG by the
 * temporary file's name) to sync the SVG's bytes and its directory.
 *
 * Temporary files: "<path>.tmp.<pid>" of an exited child goes when the path
 * is written; that of a live process (our parent) stays, and so do names
 * that only look alike (".tmpx", digits then a letter, a leading zero, the
 * same pid under another path).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "train/metrics.h"
#include "train/plot.h"
#include "util/fileio.h"

typedef struct Sync {
    dev_t dev;
    ino_t ino;
    int is_directory, watched_in_place;
    off_t size;
} Sync;

enum { MAX_SYNCS = 64 };
static Sync syncs[MAX_SYNCS];
static int n_syncs, fail_directory_syncs;
static const char *watched; /* a final path: whether it exists at each sync is recorded */

int fsync(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return (int)syscall(SYS_fsync, fd);
    if (n_syncs < MAX_SYNCS)
        syncs[n_syncs++] = (Sync){st.st_dev, st.st_ino, S_ISDIR(st.st_mode), watched && tn_file_exists(watched),
                                  st.st_size};
    if (fail_directory_syncs && S_ISDIR(st.st_mode)) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fsync, fd);
}

/* The last recorded sync of the file at path, or NULL. */
static const Sync *last_sync_of(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return NULL;
    for (int i = n_syncs - 1; i >= 0; i--)
        if (syncs[i].dev == st.st_dev && syncs[i].ino == st.st_ino) return &syncs[i];
    return NULL;
}

static void start_watching(const char *path) {
    n_syncs = 0;
    watched = path;
}

static void put(const char *dir, const char *name) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    /* fopen, not tn_write_file: that would already clean the directory */
    FILE *fp = fopen(path, "w");
    if (!fp || fclose(fp) != 0) tn_die("cannot create %s: %s", path, strerror(errno));
}

static int present(const char *dir, const char *name) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return tn_file_exists(path);
}

static void check_durable_rename(const char *dir) {
    char path[4200], cwd[4096];
    TnError err;
    snprintf(path, sizeof path, "%s/a.txt", dir);
    start_watching(path);
    CHECK(tn_write_file(path, "hello", 5, &err) == 0, "%s", err.msg);
    const Sync *file = last_sync_of(path), *directory = last_sync_of(dir);
    CHECK(file && !file->is_directory && file->size == 5 && !file->watched_in_place,
          "the data synced (5 bytes) under the temporary name");
    CHECK(directory && directory->is_directory && directory->watched_in_place,
          "%s synced after %s was renamed into place", dir, path);

    /* a bare name: the current directory */
    CHECK(getcwd(cwd, sizeof cwd) != NULL && chdir(dir) == 0, "chdir %s", dir);
    start_watching("bare.txt");
    CHECK(tn_write_file("bare.txt", "x", 1, &err) == 0, "%s", err.msg);
    directory = last_sync_of(".");
    CHECK(directory && directory->is_directory && directory->watched_in_place,
          "\".\" synced after bare.txt was renamed into place");
    CHECK(chdir(cwd) == 0, "chdir back to %s", cwd);

    /* a failed directory sync is an error naming the directory; the file is in place */
    start_watching(path);
    fail_directory_syncs = 1;
    int rc = tn_write_file(path, "new", 3, &err);
    fail_directory_syncs = 0;
    CHECK(rc == -1 && strncmp(err.msg, dir, strlen(dir)) == 0 && strstr(err.msg, "sync") &&
              strstr(err.msg, strerror(EIO)),
          "a failed directory sync names the directory and the cause: %s", rc ? err.msg : "(no error)");
    char *text = NULL;
    CHECK(tn_read_file(path, &text, NULL, &err) == 0 && strcmp(text, "new") == 0, "the new file is in place");
    free(text);
    char tmp[64];
    snprintf(tmp, sizeof tmp, "a.txt.tmp.%ld", (long)getpid());
    CHECK(!present(dir, tmp), "no temporary file left");
    watched = NULL;
}

static void check_dead_temporaries(const char *dir) {
    pid_t child = fork();
    if (child == 0) _exit(0);
    int status;
    CHECK(child > 0 && waitpid(child, &status, 0) == child, "fork and wait for a child");
    long dead = (long)child, alive = (long)getppid();
    char dead_tmp[64], alive_tmp[64], lookalike[64], padded[64], other[64], path[4200];
    snprintf(dead_tmp, sizeof dead_tmp, "b.txt.tmp.%ld", dead);
    snprintf(alive_tmp, sizeof alive_tmp, "b.txt.tmp.%ld", alive);
    snprintf(lookalike, sizeof lookalike, "b.txt.tmp.%ldx", dead);
    snprintf(padded, sizeof padded, "b.txt.tmp.0%ld", dead);
    snprintf(other, sizeof other, "c.txt.tmp.%ld", dead);
    const char *names[] = {dead_tmp, alive_tmp, "b.txt.tmpx", lookalike, padded, other};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) put(dir, names[i]);

    TnError err;
    snprintf(path, sizeof path, "%s/b.txt", dir);
    CHECK(tn_write_file(path, "b", 1, &err) == 0, "%s", err.msg);
    CHECK(!present(dir, dead_tmp), "%s (pid %ld exited) removed", dead_tmp, dead);
    for (size_t i = 1; i < sizeof names / sizeof *names; i++)
        CHECK(present(dir, names[i]), "%s kept", names[i]);
    CHECK(present(dir, "b.txt"), "b.txt written");
}

static void check_remove_if_present(const char *dir) {
    char path[4200], below_file[4300];
    TnError err;
    snprintf(path, sizeof path, "%s/gone.txt", dir);
    put(dir, "gone.txt");
    CHECK(tn_remove_if_present(path, &err) == 0 && !tn_file_exists(path), "a present file removed: %s", err.msg);
    CHECK(tn_remove_if_present(path, &err) == 0, "an absent file is no error: %s", err.msg);
    snprintf(path, sizeof path, "%s/sub", dir);
    CHECK(tn_mkdir_p(path, &err) == 0, "%s", err.msg);
    CHECK(tn_remove_if_present(path, &err) == -1 && strncmp(err.msg, path, strlen(path)) == 0 && tn_file_exists(path),
          "a directory is refused (naming it) and kept: %s", err.msg);
    snprintf(path, sizeof path, "%s/b.txt", dir);
    snprintf(below_file, sizeof below_file, "%s/x", path);
    CHECK(tn_remove_if_present(below_file, &err) == -1 && strstr(err.msg, below_file),
          "a path under a file is an error naming it: %s", err.msg);
}

static void check_plot(const char *dir) {
    TnMetrics mt;
    TnError err;
    CHECK(tn_metrics_open(&mt, dir, -1, &err) == 0, "%s", err.msg);
    for (int step = 1; step <= 3; step++)
        CHECK(tn_metrics_log_step(&mt, step, 3.0 / step, 1e-3, 1.0, 100 * step, 0.0, 0.1 * step, &err) == 0, "%s",
              err.msg);
    tn_metrics_close(&mt);
    char svg[4200], svg_path[4200];
    snprintf(svg_path, sizeof svg_path, "%s/%s", dir, TN_PLOT_FILE);
    start_watching(svg_path);
    CHECK(tn_plot_run(dir, svg, sizeof svg, &err) == 0, "plot: %s", err.msg);
    const Sync *file = last_sync_of(svg_path), *directory = last_sync_of(dir);
    CHECK(file && file->size > 0 && !file->watched_in_place, "gnuplot's SVG synced (%lld bytes) before the rename",
          file ? (long long)file->size : -1LL);
    CHECK(directory && directory->watched_in_place, "%s synced after the SVG was renamed into place", dir);
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", TN_PLOT_FILE, (long)getpid());
    CHECK(!present(dir, tmp), "no temporary SVG left");
    watched = NULL;
}

int main(int argc, char **argv) {
    (void)argc;
    char dir[4096];
    make_temp_dir(dir, sizeof dir, "fileio");
    check_durable_rename(dir);
    check_dead_temporaries(dir);
    check_remove_if_present(dir);
    check_plot(dir);
    remove_tree(dir);
    return TEST_DONE(argv[0]);
}
