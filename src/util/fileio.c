#include "util/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tn_path_directory(const char *path, char *out, size_t cap, TnError *err) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        strcpy(out, ".");
        return 0;
    }
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= cap) return tn_fail(err, "%s: path too long", path);
    memcpy(out, path, n);
    out[n] = '\0';
    return 0;
}

/* Whether name is "<base>.tmp.<pid>" (the pid in tn_atomic_open's form:
 * decimal, no sign, no leading zero) of a process that no longer exists.
 * EPERM (a live process of another user) keeps it: only ESRCH says dead. */
static int is_dead_writers_temporary(const char *name, const char *base, size_t base_len) {
    if (strncmp(name, base, base_len) != 0 || strncmp(name + base_len, ".tmp.", 5) != 0) return 0;
    const char *digits = name + base_len + 5;
    size_t n = strspn(digits, "0123456789");
    if (n == 0 || n > 10 || digits[n] != '\0' || digits[0] == '0') return 0;
    long pid = strtol(digits, NULL, 10);
    return pid <= INT_MAX && kill((pid_t)pid, 0) == -1 && errno == ESRCH;
}

/* Removes the temporary files of f's path left by writers that were killed
 * before their commit or abort. Best effort: a directory that cannot be
 * listed or a file that cannot be removed costs nothing but the leftover,
 * so the write itself never fails for it. */
static void remove_dead_temporaries(const TnAtomicFile *f) {
    char dir[sizeof f->path], stale[sizeof f->path + 256];
    if (tn_path_directory(f->path, dir, sizeof dir, NULL)) return;
    const char *slash = strrchr(f->path, '/');
    const char *base = slash ? slash + 1 : f->path;
    size_t base_len = strlen(base);
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));)
        if (is_dead_writers_temporary(e->d_name, base, base_len)) {
            /* beside f->path: its directory part (none for a bare name) and the entry's name */
            snprintf(stale, sizeof stale, "%.*s%s", (int)(base - f->path), f->path, e->d_name);
            unlink(stale);
        }
    closedir(d);
}

/* fsyncs the directory that holds path, so that a rename or removal in it
 * survives a power loss. EINVAL (a file system that cannot sync a
 * directory, as some network and FUSE ones) is not a failure: there is
 * nothing more to make durable there, and refusing would refuse every save
 * (PostgreSQL's fsync_fname makes the same exception). */
static int sync_directory_of(const char *path, TnError *err) {
    char dir[4096];
    if (tn_path_directory(path, dir, sizeof dir, err)) return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    /* a directory one may write but not read (EACCES) cannot be synced: the file is in place, as before */
    if (fd < 0 && errno == EACCES) return 0;
    if (fd < 0) return tn_fail(err, "%s: cannot open the directory to sync it: %s", dir, strerror(errno));
    int rc = fsync(fd) != 0 && errno != EINVAL ? -1 : 0;
    int e = errno;
    close(fd);
    if (rc)
        return tn_fail(err, "%s: cannot sync the directory after renaming %s into place: %s", dir, path, strerror(e));
    return 0;
}

int tn_atomic_open(TnAtomicFile *f, const char *path, TnError *err) {
    memset(f, 0, sizeof *f);
    if (strlen(path) >= sizeof f->path) return tn_fail(err, "%s: path too long", path);
    strcpy(f->path, path);
    snprintf(f->tmp_path, sizeof f->tmp_path, "%s.tmp.%ld", path, (long)getpid());
    f->fp = fopen(f->tmp_path, "wb");
    if (!f->fp) return tn_fail(err, "%s: cannot create temporary file %s: %s", path, f->tmp_path, strerror(errno));
    remove_dead_temporaries(f);
    return 0;
}

int tn_atomic_write(TnAtomicFile *f, const void *data, size_t n, TnError *err) {
    if (n && fwrite(data, 1, n, f->fp) != n) {
        int e = errno;
        tn_atomic_abort(f);
        return tn_fail(err, "%s: write failed: %s", f->path, strerror(e ? e : EIO));
    }
    return 0;
}

int tn_atomic_commit(TnAtomicFile *f, TnError *err) {
    return tn_atomic_finish(f, err) || tn_atomic_publish(f, err) ? -1 : 0;
}

int tn_atomic_finish(TnAtomicFile *f, TnError *err) {
    int failed = fflush(f->fp) != 0 || ferror(f->fp) || fsync(fileno(f->fp)) != 0;
    int e = errno;
    if (fclose(f->fp) != 0 && !failed) { failed = 1; e = errno; }
    f->fp = NULL;
    if (failed) {
        remove(f->tmp_path);
        return tn_fail(err, "%s: write failed: %s", f->path, strerror(e ? e : EIO));
    }
    return 0;
}

int tn_atomic_publish(TnAtomicFile *f, TnError *err) {
    if (rename(f->tmp_path, f->path) != 0) {
        int e = errno;
        remove(f->tmp_path);
        return tn_fail(err, "%s: cannot rename temporary file into place: %s", f->path, strerror(e));
    }
    return sync_directory_of(f->path, err);
}

void tn_atomic_abort(TnAtomicFile *f) {
    if (f->fp) fclose(f->fp);
    f->fp = NULL;
    remove(f->tmp_path);
}

FILE *tn_open_regular(const char *path, uint64_t *size, TnError *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        tn_fail(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0) {
        int e = errno;
        fclose(fp);
        tn_fail(err, "%s: cannot stat: %s", path, strerror(e));
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) { /* a directory opens, then seeks to 2^63 - 1 */
        fclose(fp);
        tn_fail(err, "%s: %s", path, S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
        return NULL;
    }
    *size = (uint64_t)st.st_size;
    return fp;
}

int tn_read_file(const char *path, char **data, size_t *size, TnError *err) {
    uint64_t len;
    FILE *fp = tn_open_regular(path, &len, err);
    if (!fp) return -1;
    char *buf = tn_malloc((size_t)len + 1);
    if (len > 0 && fread(buf, 1, (size_t)len, fp) != (size_t)len) {
        free(buf);
        fclose(fp);
        return tn_fail(err, "%s: read failed", path);
    }
    fclose(fp);
    buf[len] = '\0';
    *data = buf;
    if (size) *size = (size_t)len;
    return 0;
}

int tn_write_file(const char *path, const void *data, size_t n, TnError *err) {
    TnAtomicFile f;
    if (tn_atomic_open(&f, path, err) || tn_atomic_write(&f, data, n, err)) return -1;
    return tn_atomic_commit(&f, err);
}

int tn_mkdir_p(const char *path, TnError *err) {
    char buf[4096];
    if (strlen(path) >= sizeof buf) return tn_fail(err, "%s: path too long", path);
    strcpy(buf, path);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return tn_fail(err, "%s: cannot create directory: %s", buf, strerror(errno));
            *p = saved;
            if (saved == '\0') break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return tn_fail(err, "%s: not a directory", path);
    return 0;
}

int tn_mkdir_parent(const char *path, TnError *err) {
    char directory[4096];
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) return 0;
    return tn_path_directory(path, directory, sizeof directory, err) || tn_mkdir_p(directory, err) ? -1 : 0;
}

int tn_remove_if_present(const char *path, TnError *err) {
    if (unlink(path) != 0 && errno != ENOENT) return tn_fail(err, "%s: cannot remove: %s", path, strerror(errno));
    return 0;
}

int tn_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int tn_path_ends_with(const char *path, const char *suffix) {
    size_t n = strlen(path), m = strlen(suffix);
    return n >= m && strcmp(path + n - m, suffix) == 0;
}

int tn_path_join(char *out, size_t cap, const char *dir, const char *name, TnError *err) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) return tn_fail(err, "%s/%s: path too long", dir, name);
    return 0;
}
