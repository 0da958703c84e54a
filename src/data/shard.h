/* shard.h: token shards (SPEC section 4, llm.c layout).
 *
 * A shard is a header of 256 little-endian int32 (magic 20240801, version 7,
 * token count, the rest 0) followed by that many uint32 token ids. Opening
 * checks the magic, the version and that the file holds exactly the tokens
 * the header announces; the tokens are memory-mapped, not copied.
 */
#ifndef TN_DATA_SHARD_H
#define TN_DATA_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define TN_SHARD_MAGIC 20240801
#define TN_SHARD_VERSION 7
#define TN_SHARD_HEADER_INTS 256

typedef struct TnShard {
    char path[4096];
    const uint32_t *tokens; /* n_tokens ids, read-only mapping */
    size_t n_tokens;
    void *map;              /* the whole file */
    size_t map_size;
} TnShard;

int tn_shard_open(TnShard *s, const char *path, TnError *err);
void tn_shard_close(TnShard *s);
/* Fails if any token is >= vocab_size, naming the first bad index. */
int tn_shard_check_vocab(const TnShard *s, int vocab_size, TnError *err);
/* Writes tokens as a shard at path, atomically. */
int tn_shard_write(const char *path, const uint32_t *tokens, size_t n_tokens, TnError *err);

#endif
