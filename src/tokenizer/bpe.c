#include "tokenizer/bpe.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- building ---------------------------------------------------------- */

static uint64_t hash_bytes(const void *data, size_t len) {
    const unsigned char *p = data;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (len * 0xff51afd7ed558ccdull);
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 29;
    }
    uint64_t tail = 0;
    memcpy(&tail, p, len);
    h = (h ^ tail) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 32);
}

static size_t power_of_two_above(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    return cap;
}

int32_t tn_bpe_find_piece(const TnBpe *bpe, const char *piece, size_t len) {
    size_t mask = bpe->piece_capacity - 1;
    for (size_t i = hash_bytes(piece, len) & mask;; i = (i + 1) & mask) {
        int32_t id = bpe->piece_table[i];
        if (id < 0) return -1;
        if (strlen(bpe->pieces[id]) == len && memcmp(bpe->pieces[id], piece, len) == 0) return id;
    }
}

/* "<0xNN>" with two uppercase hex digits, as SentencePiece writes them. */
static int byte_piece_value(const char *piece) {
    static const char hex[] = "0123456789ABCDEF";
    if (strlen(piece) != 6 || memcmp(piece, "<0x", 3) != 0 || piece[5] != '>') return -1;
    const char *hi = memchr(hex, piece[3], 16), *lo = memchr(hex, piece[4], 16);
    if (!hi || !lo || !piece[3] || !piece[4]) return -1;
    return (int)(hi - hex) * 16 + (int)(lo - hex);
}

/* What id decodes to: nothing for control tokens, the byte for <0xNN>
 * under byte fallback, else the piece with "▁" turned back into spaces. */
static size_t decoded_form(const TnBpe *bpe, int32_t id, char *out) {
    const char *piece = bpe->pieces[id];
    if (bpe->is_special[id]) return 0;
    int byte = byte_piece_value(piece);
    if (byte >= 0 && bpe->options.byte_fallback) { out[0] = (char)byte; return 1; }
    size_t n = 0;
    for (const char *p = piece; *p;) {
        if (bpe->options.metaspace && strncmp(p, TN_METASPACE_UTF8, 3) == 0) { out[n++] = ' '; p += 3; }
        else out[n++] = *p++;
    }
    return n;
}

int tn_bpe_init(TnBpe *bpe, char **pieces, uint8_t *is_special, int vocab_size, const TnBpeOptions *options,
                const char *source, TnError *err) {
    memset(bpe, 0, sizeof *bpe);
    bpe->pieces = pieces;
    bpe->is_special = is_special;
    bpe->vocab_size = vocab_size;
    bpe->options = *options;
    bpe->unk_id = -1;
    bpe->split = tn_split_of(TN_SPLIT_NONE);
    bpe->piece_capacity = power_of_two_above((size_t)vocab_size);
    bpe->piece_table = tn_malloc(bpe->piece_capacity * sizeof *bpe->piece_table);
    memset(bpe->piece_table, 0xff, bpe->piece_capacity * sizeof *bpe->piece_table);
    bpe->char_ids = tn_malloc(TN_CODEPOINT_LIMIT * sizeof *bpe->char_ids);
    memset(bpe->char_ids, 0xff, TN_CODEPOINT_LIMIT * sizeof *bpe->char_ids);
    memset(bpe->byte_ids, 0xff, sizeof bpe->byte_ids);

    size_t total = 0, mask = bpe->piece_capacity - 1;
    for (int32_t id = 0; id < vocab_size; id++) {
        const char *piece = pieces[id];
        size_t len = strlen(piece);
        total += len;
        if (tn_bpe_find_piece(bpe, piece, len) >= 0) {
            tn_fail(err, "%s: the piece \"%s\" appears twice in the vocabulary (ids %d and %d)", source, piece,
                    tn_bpe_find_piece(bpe, piece, len), id);
            tn_bpe_free(bpe);
            return -1;
        }
        size_t slot = hash_bytes(piece, len) & mask;
        while (bpe->piece_table[slot] >= 0) slot = (slot + 1) & mask;
        bpe->piece_table[slot] = id;
        int byte = byte_piece_value(piece);
        if (byte >= 0) bpe->byte_ids[byte] = id;
        if (is_special[id] || len == 0) continue;
        TnChar c = tn_utf8_next((const unsigned char *)piece, len);
        if (c.length == len && !c.invalid) bpe->char_ids[c.codepoint] = id;
    }
    bpe->unk_id = tn_bpe_find_piece(bpe, "<unk>", 5);

    bpe->decoded = tn_malloc(total + 1);
    bpe->decoded_offset = tn_malloc(((size_t)vocab_size + 1) * sizeof *bpe->decoded_offset);
    size_t at = 0;
    for (int32_t id = 0; id < vocab_size; id++) {
        bpe->decoded_offset[id] = (uint32_t)at;
        at += decoded_form(bpe, id, bpe->decoded + at);
    }
    bpe->decoded_offset[vocab_size] = (uint32_t)at;
    return 0;
}

/* Class of a piece's first or last character, as the encoder classifies
 * the text character it stands for. */
static TnCharClass piece_edge_class(const char *piece, int last) {
    size_t len = strlen(piece), start = 0;
    if (len == 0) return TN_CLASS_CONTROL; /* an empty piece (malformed, harmless) */
    if (last) {
        start = len - 1;
        while (start > 0 && len - start < 4 && ((unsigned char)piece[start] & 0xc0) == 0x80) start--;
    }
    TnChar c = tn_utf8_next((const unsigned char *)piece + start, len - start);
    return tn_char_class(c.codepoint, c.invalid || (last && start + c.length != len));
}

/* Pre-tokenization may cut the text only where no merge can join across the
 * cut: a merged piece spanning it would contain the two characters on
 * either side, and every adjacent pair inside a merged piece was the seam of
 * one merge. So the exact split cuts between every pair of classes that no
 * merge's seam joins. Merges of byte or control pieces stand for no text:
 * no cut at all then. */
static TnSplit finest_exact_split(const TnBpe *bpe) {
    TnSplit split;
    memset(&split, 1, sizeof split);
    for (int i = 0; i < bpe->n_merges; i++) {
        int32_t l = bpe->merges[i].left, r = bpe->merges[i].right;
        if (bpe->is_special[l] || bpe->is_special[r] || byte_piece_value(bpe->pieces[l]) >= 0 ||
            byte_piece_value(bpe->pieces[r]) >= 0)
            return tn_split_of(TN_SPLIT_NONE);
        split.cut[piece_edge_class(bpe->pieces[l], 1)][piece_edge_class(bpe->pieces[r], 0)] = 0;
    }
    return split;
}

int tn_bpe_set_merges(TnBpe *bpe, TnMerge *merges, const int32_t *ranks, int n_merges, const char *source,
                      TnError *err) {
    bpe->merges = merges;
    bpe->n_merges = n_merges;
    bpe->merge_capacity = power_of_two_above((size_t)n_merges);
    bpe->merge_table = tn_calloc(bpe->merge_capacity, sizeof *bpe->merge_table);
    char joined[2 * 4096];
    for (int rank = 0; rank < n_merges; rank++) {
        int32_t l = merges[rank].left, r = merges[rank].right, result;
        if (l < 0 || r < 0 || l >= bpe->vocab_size || r >= bpe->vocab_size) {
            tn_fail(err, "%s: merge %d refers to id %d, outside the vocabulary of %d", source, rank,
                    l < 0 || l >= bpe->vocab_size ? l : r, bpe->vocab_size);
            goto fail;
        }
        size_t nl = strlen(bpe->pieces[l]), nr = strlen(bpe->pieces[r]);
        int32_t id = -1;
        if (nl + nr <= sizeof joined) {
            memcpy(joined, bpe->pieces[l], nl);
            memcpy(joined + nl, bpe->pieces[r], nr);
            id = tn_bpe_find_piece(bpe, joined, nl + nr);
        }
        if (id < 0) {
            tn_fail(err, "%s: merge %d (\"%s\" \"%s\") makes a piece that is not in the vocabulary", source, rank,
                    bpe->pieces[l], bpe->pieces[r]);
            goto fail;
        }
        if (tn_bpe_merge_rank(bpe, l, r, &result) >= 0) {
            tn_fail(err, "%s: merge %d (\"%s\" \"%s\") repeats an earlier merge", source, rank, bpe->pieces[l],
                    bpe->pieces[r]);
            goto fail;
        }
        uint64_t key = tn_merge_key(l, r);
        size_t mask = bpe->merge_capacity - 1, slot = tn_merge_slot(key, mask);
        while (bpe->merge_table[slot].key) slot = (slot + 1) & mask;
        bpe->merge_table[slot] = (TnMergeSlot){key, ranks ? ranks[rank] : rank, id};
    }
    bpe->split = finest_exact_split(bpe);
    return 0;
fail:
    tn_bpe_free(bpe);
    return -1;
}

void tn_bpe_free(TnBpe *bpe) {
    if (bpe->pieces)
        for (int i = 0; i < bpe->vocab_size; i++) free(bpe->pieces[i]);
    free(bpe->pieces);
    free(bpe->is_special);
    free(bpe->decoded);
    free(bpe->decoded_offset);
    free(bpe->char_ids);
    free(bpe->merges);
    free(bpe->merge_table);
    free(bpe->piece_table);
    memset(bpe, 0, sizeof *bpe);
}

/* ---- encoding ---------------------------------------------------------- */

/* Words of at most this many symbols are merged by rescanning an array of
 * pair ranks (fast for the usual short word); longer ones use a heap over a
 * linked list, O(n log n), so one 10 MB "word" stays near-linear. */
#define SHORT_WORD 48
/* Words of at most CACHE_WORD_BYTES bytes are remembered, in a table of
 * cache_slots entries whose keys and ids fill arenas of 8 bytes and 8 ids
 * per slot. The table starts small (a short text costs little) and doubles
 * when half full or when an arena cannot take one more word, up to
 * CACHE_MAX_SLOTS (about 8 MB per encoder); there it is emptied instead. */
#define CACHE_WORD_BYTES 64
#define CACHE_MIN_SLOTS (1u << 10)
#define CACHE_MAX_SLOTS (1u << 17)

typedef struct CacheSlot {
    uint64_t hash; /* 0: empty */
    uint32_t key_offset, ids_offset;
    uint16_t key_length, n_ids;
} CacheSlot;

typedef struct HeapEntry {
    int32_t rank, position;
} HeapEntry;

struct TnBpeEncoder {
    const TnBpe *bpe;
    int32_t *out;                    /* ids of the current text */
    size_t n_out, out_capacity;
    int32_t *symbols, *ranks, *results, *prev, *next; /* one word's symbols */
    HeapEntry *heap;                 /* 3 * symbol_capacity */
    size_t symbol_capacity;
    int last_was_unk;
    CacheSlot *cache;                /* [cache_slots] */
    size_t cache_slots, cache_used;
    char *cache_keys;                /* [8 * cache_slots] */
    int32_t *cache_ids;              /* [8 * cache_slots] */
    size_t keys_used, ids_used;
};

TnBpeEncoder *tn_bpe_encoder_new(const TnBpe *bpe) {
    TnBpeEncoder *enc = tn_calloc(1, sizeof *enc);
    enc->bpe = bpe;
    enc->cache_slots = CACHE_MIN_SLOTS;
    enc->cache = tn_calloc(enc->cache_slots, sizeof *enc->cache);
    enc->cache_keys = tn_malloc(8 * enc->cache_slots);
    enc->cache_ids = tn_malloc(8 * enc->cache_slots * sizeof *enc->cache_ids);
    return enc;
}

void tn_bpe_encoder_free(TnBpeEncoder *enc) {
    if (!enc) return;
    free(enc->out);
    free(enc->symbols);
    free(enc->ranks);
    free(enc->results);
    free(enc->prev);
    free(enc->next);
    free(enc->heap);
    free(enc->cache);
    free(enc->cache_keys);
    free(enc->cache_ids);
    free(enc);
}

static void reserve_symbols(TnBpeEncoder *enc, size_t n) {
    if (n <= enc->symbol_capacity) return;
    size_t cap = enc->symbol_capacity ? enc->symbol_capacity : 256;
    while (cap < n) cap *= 2;
    free(enc->symbols); free(enc->ranks); free(enc->results); free(enc->prev); free(enc->next); free(enc->heap);
    enc->symbols = tn_malloc(cap * sizeof *enc->symbols);
    enc->ranks = tn_malloc(cap * sizeof *enc->ranks);
    enc->results = tn_malloc(cap * sizeof *enc->results);
    enc->prev = tn_malloc(cap * sizeof *enc->prev);
    enc->next = tn_malloc(cap * sizeof *enc->next);
    enc->heap = tn_malloc(3 * cap * sizeof *enc->heap);
    enc->symbol_capacity = cap;
}

static void emit(TnBpeEncoder *enc, const int32_t *ids, size_t n) {
    if (enc->n_out + n > enc->out_capacity) {
        enc->out_capacity = 2 * (enc->n_out + n) + 1024;
        enc->out = realloc(enc->out, enc->out_capacity * sizeof *enc->out);
        if (!enc->out) tn_die("out of memory for %zu token ids", enc->out_capacity);
    }
    int32_t *out = enc->out + enc->n_out;
    for (size_t i = 0; i < n; i++) out[i] = ids[i]; /* usually one or two ids: no memcpy call */
    enc->n_out += n;
}

static int32_t pair_rank(const TnBpe *bpe, int32_t left, int32_t right, int32_t *result) {
    int32_t rank = tn_bpe_merge_rank(bpe, left, right, result);
    return rank < 0 ? INT32_MAX : rank;
}

static size_t merge_short(TnBpeEncoder *enc, size_t n) {
    const TnBpe *bpe = enc->bpe;
    int32_t *s = enc->symbols, *rank = enc->ranks, *res = enc->results;
    for (size_t i = 0; i + 1 < n; i++) rank[i] = pair_rank(bpe, s[i], s[i + 1], &res[i]);
    while (n > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < n; i++)
            if (rank[i] < rank[best]) best = i;
        if (rank[best] == INT32_MAX) break;
        s[best] = res[best];
        memmove(s + best + 1, s + best + 2, (n - best - 2) * sizeof *s);
        if (best + 2 < n) {
            memmove(rank + best + 1, rank + best + 2, (n - best - 3) * sizeof *rank);
            memmove(res + best + 1, res + best + 2, (n - best - 3) * sizeof *res);
        }
        n--;
        if (best + 1 < n) rank[best] = pair_rank(bpe, s[best], s[best + 1], &res[best]);
        if (best > 0) rank[best - 1] = pair_rank(bpe, s[best - 1], s[best], &res[best - 1]);
    }
    return n;
}

static int heap_less(HeapEntry a, HeapEntry b) {
    return a.rank < b.rank || (a.rank == b.rank && a.position < b.position);
}

static void heap_push(HeapEntry *heap, size_t *size, HeapEntry e) {
    size_t i = (*size)++;
    while (i > 0 && heap_less(e, heap[(i - 1) / 2])) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = e;
}

static HeapEntry heap_pop(HeapEntry *heap, size_t *size) {
    HeapEntry top = heap[0], last = heap[--*size];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= *size) break;
        if (child + 1 < *size && heap_less(heap[child + 1], heap[child])) child++;
        if (!heap_less(heap[child], last)) break;
        heap[i] = heap[child];
        i = child;
    }
    heap[i] = last;
    return top;
}

static void push_pair(TnBpeEncoder *enc, size_t *heap_size, int32_t position) {
    int32_t result, next = enc->next[position];
    if (next < 0) return;
    int32_t rank = tn_bpe_merge_rank(enc->bpe, enc->symbols[position], enc->symbols[next], &result);
    if (rank >= 0) heap_push(enc->heap, heap_size, (HeapEntry){rank, position});
}

/* The HF merge loop: pop the lowest (rank, position); skip entries whose
 * pair changed since they were pushed; merge; push the two new pairs. */
static size_t merge_long(TnBpeEncoder *enc, size_t n) {
    int32_t *s = enc->symbols, *prev = enc->prev, *next = enc->next;
    size_t heap_size = 0;
    for (size_t i = 0; i < n; i++) {
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < n; i++) push_pair(enc, &heap_size, (int32_t)i);
    while (heap_size) {
        HeapEntry e = heap_pop(enc->heap, &heap_size);
        int32_t at = e.position, right = next[at], result = -1;
        if (s[at] < 0 || right < 0 || tn_bpe_merge_rank(enc->bpe, s[at], s[right], &result) != e.rank) continue;
        s[at] = result;
        s[right] = -1;
        next[at] = next[right];
        if (next[at] >= 0) prev[next[at]] = at;
        if (prev[at] >= 0) push_pair(enc, &heap_size, prev[at]);
        push_pair(enc, &heap_size, at);
    }
    size_t kept = 0;
    for (int32_t i = 0; i >= 0; i = next[i]) s[kept++] = s[i];
    return kept;
}

/* Appends the initial symbols of one character (its piece, its bytes, or
 * <unk>); returns the new count. as_piece = 0 forces the bytes. */
static size_t push_char(TnBpeEncoder *enc, size_t n, uint32_t codepoint, int as_piece, const unsigned char *bytes,
                        size_t length) {
    const TnBpe *bpe = enc->bpe;
    int32_t id = as_piece ? bpe->char_ids[codepoint] : -1;
    if (id >= 0) {
        enc->symbols[n++] = id;
        enc->last_was_unk = 0;
        return n;
    }
    int bytes_known = bpe->options.byte_fallback;
    for (size_t i = 0; i < length; i++) bytes_known = bytes_known && bpe->byte_ids[bytes[i]] >= 0;
    if (bytes_known || bpe->unk_id < 0) {
        for (size_t i = 0; i < length; i++)
            if (bpe->byte_ids[bytes[i]] >= 0) enc->symbols[n++] = bpe->byte_ids[bytes[i]];
        enc->last_was_unk = 0;
    } else if (!(bpe->options.fuse_unk && enc->last_was_unk)) {
        enc->symbols[n++] = bpe->unk_id;
        enc->last_was_unk = 1;
    }
    return n;
}

static uint32_t cache_find(TnBpeEncoder *enc, const char *word, size_t len, uint64_t hash) {
    uint32_t mask = (uint32_t)enc->cache_slots - 1;
    for (uint32_t i = (uint32_t)hash & mask;; i = (i + 1) & mask) {
        const CacheSlot *slot = &enc->cache[i];
        if (slot->hash == 0 ||
            (slot->hash == hash && slot->key_length == len &&
             memcmp(enc->cache_keys + slot->key_offset, word, len) == 0))
            return i;
    }
}

/* Doubles the cache (keeping its words) or, at its largest, empties it. */
static void cache_grow_or_empty(TnBpeEncoder *enc) {
    if (enc->cache_slots >= CACHE_MAX_SLOTS) {
        memset(enc->cache, 0, enc->cache_slots * sizeof *enc->cache);
        enc->cache_used = enc->keys_used = enc->ids_used = 0;
        return;
    }
    CacheSlot *old = enc->cache;
    size_t old_slots = enc->cache_slots;
    enc->cache_slots *= 2;
    enc->cache = tn_calloc(enc->cache_slots, sizeof *enc->cache);
    enc->cache_keys = realloc(enc->cache_keys, 8 * enc->cache_slots);
    enc->cache_ids = realloc(enc->cache_ids, 8 * enc->cache_slots * sizeof *enc->cache_ids);
    if (!enc->cache_keys || !enc->cache_ids) tn_die("out of memory growing the word cache");
    uint32_t mask = (uint32_t)enc->cache_slots - 1;
    for (size_t i = 0; i < old_slots; i++) {
        if (!old[i].hash) continue;
        uint32_t at = (uint32_t)old[i].hash & mask;
        while (enc->cache[at].hash) at = (at + 1) & mask;
        enc->cache[at] = old[i];
    }
    free(old);
}

static void encode_word(TnBpeEncoder *enc, const unsigned char *word, size_t len, int prefixed) {
    const TnBpe *bpe = enc->bpe;
    uint64_t hash = 0;
    uint32_t slot = 0;
    int cacheable = !prefixed && len <= CACHE_WORD_BYTES;
    if (!prefixed && (len == 1 || (word[0] >= 0xc0 && len <= 4))) { /* maybe one character: nothing to merge */
        TnChar c = tn_utf8_next(word, len);
        uint32_t cp = bpe->options.metaspace && c.codepoint == ' ' ? TN_METASPACE : c.codepoint;
        int32_t id = bpe->char_ids[cp < TN_CODEPOINT_LIMIT ? cp : 0];
        if (c.length == len && !c.invalid && id >= 0 && !(bpe->options.metaspace && c.codepoint == TN_METASPACE)) {
            emit(enc, &id, 1);
            return;
        }
    }
    if (cacheable) {
        hash = hash_bytes(word, len) | 1;
        slot = cache_find(enc, (const char *)word, len, hash);
        const CacheSlot *s = &enc->cache[slot];
        if (s->hash) { emit(enc, enc->cache_ids + s->ids_offset, s->n_ids); return; }
    }
    reserve_symbols(enc, len + 1 + (size_t)prefixed); /* at most one symbol per byte */
    size_t n = 0;
    enc->last_was_unk = 0;
    if (prefixed) n = push_char(enc, n, TN_METASPACE, 1, (const unsigned char *)TN_METASPACE_UTF8, 3);
    for (size_t at = 0; at < len;) {
        TnChar c = tn_utf8_next(word + at, len - at);
        uint32_t cp = c.codepoint;
        int as_piece = !c.invalid;
        if (bpe->options.metaspace) {
            if (cp == TN_METASPACE) as_piece = 0; /* a literal "▁" keeps its bytes (see bpe.h) */
            else if (cp == ' ') cp = TN_METASPACE;
        }
        n = push_char(enc, n, cp, as_piece, word + at, c.length);
        at += c.length;
    }
    n = n <= SHORT_WORD ? merge_short(enc, n) : merge_long(enc, n);
    emit(enc, enc->symbols, n);
    if (!cacheable) return;
    /* A word of len bytes has at most len ids. */
    size_t arena = 8 * enc->cache_slots;
    if (2 * enc->cache_used >= enc->cache_slots || enc->keys_used + len > arena || enc->ids_used + len > arena) {
        cache_grow_or_empty(enc);
        slot = cache_find(enc, (const char *)word, len, hash);
    }
    enc->cache[slot] = (CacheSlot){hash, (uint32_t)enc->keys_used, (uint32_t)enc->ids_used, (uint16_t)len, (uint16_t)n};
    memcpy(enc->cache_keys + enc->keys_used, word, len);
    memcpy(enc->cache_ids + enc->ids_used, enc->symbols, n * sizeof *enc->symbols);
    enc->keys_used += len;
    enc->ids_used += n;
    enc->cache_used++;
}

const int32_t *tn_bpe_encode(TnBpeEncoder *enc, const char *text, size_t len, size_t *n_ids) {
    const TnBpe *bpe = enc->bpe;
    int leading_space = bpe->options.metaspace && len && text[0] == ' ';
    int prefixed = bpe->options.add_prefix == TN_PREFIX_ALWAYS ||
                   (bpe->options.add_prefix == TN_PREFIX_UNLESS_SPACE && !leading_space);
    TnWordSplitter words;
    tn_words_begin(&words, text, len, &bpe->split, bpe->options.metaspace, bpe->options.split_every_space,
                   prefixed);
    size_t start, length;
    enc->n_out = 0;
    while (tn_words_next(&words, &start, &length, &prefixed))
        encode_word(enc, (const unsigned char *)text + start, length, prefixed);
    *n_ids = enc->n_out;
    return enc->out;
}
