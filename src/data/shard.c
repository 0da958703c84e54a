#include "data/shard.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fileio.h"

int tn_shard_open(TnShard *s, const char *path, TnError *err) {
    memset(s, 0, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s", path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return tn_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) { close(fd); return tn_fail(err, "%s: cannot stat: %s", path, strerror(errno)); }
    size_t size = (size_t)st.st_size, header = TN_SHARD_HEADER_INTS * sizeof(int32_t);
    if (size < header) {
        close(fd);
        return tn_fail(err, "%s: %zu bytes is shorter than the %zu-byte shard header", path, size, header);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return tn_fail(err, "%s: cannot map: %s", path, strerror(errno));
    const int32_t *h = map;
    int rc = 0;
    if (h[0] != TN_SHARD_MAGIC) rc = tn_fail(err, "%s: bad magic %d (expected %d): not a token shard", path, h[0], TN_SHARD_MAGIC);
    else if (h[1] != TN_SHARD_VERSION) rc = tn_fail(err, "%s: unsupported shard version %d (expected %d)", path, h[1], TN_SHARD_VERSION);
    else if (h[2] < 0 || (size - header) != (size_t)(uint32_t)h[2] * sizeof(uint32_t))
        rc = tn_fail(err, "%s: header announces %d tokens but the file holds %zu bytes of data (truncated?)", path,
                     h[2], size - header);
    if (rc) { munmap(map, size); return -1; }
    s->map = map;
    s->map_size = size;
    s->tokens = (const uint32_t *)((const char *)map + header);
    s->n_tokens = (size_t)(uint32_t)h[2];
    return 0;
}

void tn_shard_close(TnShard *s) {
    if (s->map) munmap(s->map, s->map_size);
    memset(s, 0, sizeof *s);
}

int tn_shard_check_vocab(const TnShard *s, int vocab_size, TnError *err) {
    for (size_t i = 0; i < s->n_tokens; i++)
        if (s->tokens[i] >= (uint32_t)vocab_size)
            return tn_fail(err, "%s: token %zu has id %u, outside the model's vocabulary of %d", s->path, i,
                           s->tokens[i], vocab_size);
    return 0;
}

int tn_shard_write(const char *path, const uint32_t *tokens, size_t n_tokens, TnError *err) {
    if (n_tokens > INT32_MAX) return tn_fail(err, "%s: %zu tokens do not fit one shard", path, n_tokens);
    int32_t header[TN_SHARD_HEADER_INTS] = {TN_SHARD_MAGIC, TN_SHARD_VERSION, (int32_t)n_tokens};
    TnAtomicFile f;
    if (tn_atomic_open(&f, path, err) || tn_atomic_write(&f, header, sizeof header, err) ||
        tn_atomic_write(&f, tokens, n_tokens * sizeof *tokens, err))
        return -1;
    return tn_atomic_commit(&f, err);
}
