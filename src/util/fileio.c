#include "util/fileio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tn_atomic_open(TnAtomicFile *f, const char *path, TnError *err) {
    memset(f, 0, sizeof *f);
    if (strlen(path) >= sizeof f->path) return tn_fail(err, "%s: path too long", path);
    strcpy(f->path, path);
    snprintf(f->tmp_path, sizeof f->tmp_path, "%s.tmp.%ld", path, (long)getpid());
    f->fp = fopen(f->tmp_path, "wb");
    if (!f->fp) return tn_fail(err, "%s: cannot create temporary file %s: %s", path, f->tmp_path, strerror(errno));
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
    return 0;
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
    if ((size_t)(slash - path) >= sizeof directory) return tn_fail(err, "%s: path too long", path);
    memcpy(directory, path, (size_t)(slash - path));
    directory[slash - path] = '\0';
    return tn_mkdir_p(directory, err);
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
