/* fileio.h: whole-file reads and crash-safe writes.
 *
 * Every file tnllm writes goes through TnAtomicFile: data is written to
 * "<path>.tmp.<pid>", flushed and fsync'ed, then renamed over <path>, and
 * the directory holding <path> ("." for a bare name) is fsync'ed after the
 * rename, so a save that returned survives a power loss (without that the
 * rename itself may be lost and the old file come back); a file system that
 * cannot sync a directory at all (EINVAL), or a directory this process may
 * write but not read (EACCES), is let be. A crash, a full
 * disk or an interrupted run leaves either the old file or the new one,
 * never a torn mix, and a failure names the path and the cause.
 *
 * A killed write leaves its temporary file behind; the next tn_atomic_open
 * of the same path removes it: every "<path>.tmp.<pid>" (all digits after
 * ".tmp.") of a pid that is no process (kill(pid, 0) fails with ESRCH),
 * found by listing <path>'s directory once. Pids are this machine's: on a
 * directory shared with other machines or PID namespaces a live writer of
 * the same path there could lose its temporary file, and its commit then
 * fails naming the path (nothing is torn). The listing and the directory
 * fsync cost one directory read and one sync a file: thousands of files
 * written into one directory pay them thousands of times.
 */
#ifndef TN_UTIL_FILEIO_H
#define TN_UTIL_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/error.h"

typedef struct TnAtomicFile {
    FILE *fp;
    char path[4096];     /* final name */
    char tmp_path[4200]; /* name while being written */
} TnAtomicFile;

/* Opens a temporary file beside path for writing. */
int tn_atomic_open(TnAtomicFile *f, const char *path, TnError *err);
/* Writes n bytes; on failure (e.g. ENOSPC) the error names the final path. */
int tn_atomic_write(TnAtomicFile *f, const void *data, size_t n, TnError *err);
/* Flushes, fsyncs, closes, renames into place and fsyncs the directory. On
 * failure the temporary file is removed and the old file at path, if any,
 * is left untouched; only a failure to sync the directory (an error naming
 * the directory) comes with the new file already in place. */
int tn_atomic_commit(TnAtomicFile *f, TnError *err);
/* tn_atomic_commit in two steps, for several files that replace their old
 * ones together once all are written: finish flushes, fsyncs and closes
 * (the data stays under the temporary name), publish renames into place
 * and fsyncs the directory. Either removes the temporary file on failure. */
int tn_atomic_finish(TnAtomicFile *f, TnError *err);
int tn_atomic_publish(TnAtomicFile *f, TnError *err);
/* Closes (if open) and removes the temporary file (for error paths). */
void tn_atomic_abort(TnAtomicFile *f);

/* Opens a regular file for reading (a directory or device refused, naming
 * it) and gives its size; NULL with err filled on failure. */
FILE *tn_open_regular(const char *path, uint64_t *size, TnError *err);
/* Reads a whole regular file (a directory or device is refused) into a
 * NUL-terminated heap buffer the caller frees. *size (if not NULL) receives
 * the length without the NUL. */
int tn_read_file(const char *path, char **data, size_t *size, TnError *err);
/* Writes a whole file atomically. */
int tn_write_file(const char *path, const void *data, size_t n, TnError *err);

/* Creates a directory (and its parents) if missing. */
int tn_mkdir_p(const char *path, TnError *err);

/* tn_mkdir_p of the directory part of path (up to its last '/'); nothing
 * for a name in the current directory or directly under /. */
int tn_mkdir_parent(const char *path, TnError *err);
int tn_file_exists(const char *path);
/* Removes the file at path if it is there: 0 when removed or absent, -1
 * with err naming the path otherwise (a directory is refused, not removed). */
int tn_remove_if_present(const char *path, TnError *err);
/* The directory part of path into out (cap at least 2): up to its last
 * '/', "/" for a name directly under it, "." for a bare name; fails (err
 * may be NULL) when it does not fit. */
int tn_path_directory(const char *path, char *out, size_t cap, TnError *err);
/* Whether path's name ends with suffix (".gz", ".model"). */
int tn_path_ends_with(const char *path, const char *suffix);
/* Joins dir and name into out (of size cap); fails if it does not fit. */
int tn_path_join(char *out, size_t cap, const char *dir, const char *name, TnError *err);

#endif
