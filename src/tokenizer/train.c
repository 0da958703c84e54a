#include "tokenizer/train.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/text_batches.h"
#include "tokenizer/strmap.h"
#include "util/progress.h"

#define BATCH_BYTES (16u << 20)
#define N_CONTROLS 3
#define FIRST_CHAR_ID (N_CONTROLS + 256)

TnTrainOptions tn_train_defaults(void) {
    return (TnTrainOptions){32000, 2, 0.9995, 0, NULL, 0, 0};
}

/* ---- counting words ---------------------------------------------------- */

/* A word's key is one byte (1 if the document's "▁" leads it) followed by
 * its bytes, so the same bytes at a document start and elsewhere differ. */
typedef struct WordCounter {
    TnStrMap *maps; /* one per thread */
    int threads;
    TnSplit split;  /* training's word boundaries: TN_SPLIT_CLASSES */
    char **keys;    /* per-thread key buffer */
    size_t *key_capacity;
    long long documents, words;
    double bytes;
} WordCounter;

static void count_document(WordCounter *c, int thread, const char *text, size_t length, long long *words) {
    TnWordSplitter splitter;
    tn_words_begin(&splitter, text, length, &c->split, 1, 0, 1);
    size_t start, n;
    int prefixed;
    while (tn_words_next(&splitter, &start, &n, &prefixed)) {
        if (n + 1 > c->key_capacity[thread]) {
            free(c->keys[thread]);
            c->key_capacity[thread] = 2 * n + 64;
            c->keys[thread] = tn_malloc(c->key_capacity[thread]);
        }
        char *key = c->keys[thread];
        key[0] = (char)prefixed;
        memcpy(key + 1, text + start, n);
        size_t entry = tn_strmap_insert(&c->maps[thread], key, n + 1); /* may move values */
        c->maps[thread].values[entry]++;
        (*words)++;
    }
}

static void count_batch(WordCounter *c, const char *const *texts, const size_t *lengths, int n) {
    long long words = 0;
#pragma omp parallel for schedule(dynamic, 4) num_threads(c->threads) reduction(+ : words)
    for (int i = 0; i < n; i++) count_document(c, omp_get_thread_num(), texts[i], lengths[i], &words);
    c->words += words;
    c->documents += n;
}

static void counter_init(WordCounter *c, int threads) {
    memset(c, 0, sizeof *c);
    c->threads = threads > 0 ? threads : omp_get_max_threads();
    c->split = tn_split_of(TN_SPLIT_CLASSES);
    c->maps = tn_calloc((size_t)c->threads, sizeof *c->maps);
    c->keys = tn_calloc((size_t)c->threads, sizeof *c->keys);
    c->key_capacity = tn_calloc((size_t)c->threads, sizeof *c->key_capacity);
    for (int t = 0; t < c->threads; t++) tn_strmap_init(&c->maps[t]);
}

/* Folds the per-thread maps into maps[0] and frees the rest. */
static TnStrMap counter_finish(WordCounter *c) {
    for (int t = 1; t < c->threads; t++) {
        for (size_t e = 0; e < c->maps[t].size; e++) {
            size_t len;
            const char *key = tn_strmap_key(&c->maps[t], e, &len);
            size_t entry = tn_strmap_insert(&c->maps[0], key, len); /* may move values */
            c->maps[0].values[entry] += c->maps[t].values[e];
        }
        tn_strmap_free(&c->maps[t]);
    }
    TnStrMap all = c->maps[0];
    for (int t = 0; t < c->threads; t++) free(c->keys[t]);
    free(c->keys);
    free(c->key_capacity);
    free(c->maps);
    return all;
}

/* ---- characters -------------------------------------------------------- */

/* Calls fn for every character a word key stands for: the leading "▁",
 * spaces as "▁", and -1 for what must stay bytes (invalid UTF-8, a literal
 * "▁"). */
#define FOR_EACH_WORD_CHAR(key, len, cp, body)                                                   \
    do {                                                                                         \
        if ((key)[0]) { uint32_t cp = TN_METASPACE; body; }                                      \
        for (size_t at_ = 1; at_ < (len);) {                                                     \
            TnChar c_ = tn_utf8_next((const unsigned char *)(key) + at_, (len) - at_);           \
            uint32_t cp = c_.invalid || c_.codepoint == TN_METASPACE ? UINT32_MAX                \
                          : c_.codepoint == ' ' ? TN_METASPACE : c_.codepoint;                   \
            body;                                                                                \
            at_ += c_.length;                                                                    \
        }                                                                                        \
    } while (0)

typedef struct CharCount {
    uint32_t codepoint;
    int64_t count;
} CharCount;

static int by_count(const void *a, const void *b) {
    const CharCount *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return x->codepoint < y->codepoint ? -1 : x->codepoint > y->codepoint;
}

/* The characters that get a piece: the most frequent ones until coverage
 * of all occurrences is reached ("▁" always), at most max_chars. NUL never
 * (JSON strings cannot hold it in every reader). Returns the count and
 * fills chars (sorted by count). */
static int choose_characters(const TnStrMap *words, double coverage, int max_chars, uint32_t *chars) {
    int64_t *counts = tn_calloc(TN_CODEPOINT_LIMIT, sizeof *counts);
    int64_t total = 0;
    for (size_t e = 0; e < words->size; e++) {
        size_t len;
        const char *key = tn_strmap_key(words, e, &len);
        int64_t n = words->values[e];
        FOR_EACH_WORD_CHAR(key, len, cp, if (cp != UINT32_MAX) { counts[cp] += n; total += n; });
    }
    int distinct = 0;
    for (uint32_t cp = 1; cp < TN_CODEPOINT_LIMIT; cp++) distinct += counts[cp] > 0;
    CharCount *list = tn_malloc(((size_t)distinct + 1) * sizeof *list);
    int n = 0;
    for (uint32_t cp = 1; cp < TN_CODEPOINT_LIMIT; cp++)
        if (counts[cp] > 0) list[n++] = (CharCount){cp, counts[cp]};
    qsort(list, (size_t)n, sizeof *list, by_count);
    int kept = 0, has_space = 0;
    int64_t covered = 0;
    for (int i = 0; i < n && kept < max_chars; i++) {
        if ((double)covered >= coverage * (double)total && list[i].codepoint != TN_METASPACE) continue;
        covered += list[i].count;
        has_space = has_space || list[i].codepoint == TN_METASPACE;
        chars[kept++] = list[i].codepoint;
    }
    if (!has_space && max_chars > 0) {
        if (kept == max_chars) kept--;
        chars[kept++] = TN_METASPACE;
    }
    free(list);
    free(counts);
    return kept;
}

/* ---- merging ----------------------------------------------------------- */

typedef struct Pair {
    uint64_t key;    /* left << 32 | right */
    int64_t count;
    int32_t *words;  /* words it occurs in (may repeat, may be stale) */
    int32_t n_words, word_capacity;
    int32_t changed; /* last merge that changed its count */
} Pair;

typedef struct QueueEntry {
    int64_t count;
    uint64_t key;
} QueueEntry;

typedef struct Learner {
    /* distinct words */
    int32_t *symbols;   /* all words' symbols, -1 for a character left to bytes */
    size_t *word_start;
    int32_t *word_length;
    int64_t *word_count;
    int32_t *stamp;     /* last merge that visited the word */
    size_t n_words;
    /* pairs */
    Pair *pairs;
    size_t n_pairs, pair_capacity;
    uint32_t *pair_slots; /* index + 1 by key hash, 0 empty */
    size_t slot_capacity;
    QueueEntry *queue;
    size_t queue_size, queue_capacity;
    int32_t *changed;     /* pairs changed by the current merge */
    size_t n_changed, changed_capacity;
    /* vocabulary */
    char **pieces;
    int n_pieces, piece_capacity;
    TnStrMap piece_ids;   /* piece -> id (value) */
    TnMerge *merges;
    int n_merges;
} Learner;

static size_t slot_of(uint64_t key, size_t capacity) {
    return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 17) & (capacity - 1);
}

static void grow_pair_slots(Learner *l) {
    free(l->pair_slots);
    l->slot_capacity = l->slot_capacity ? 2 * l->slot_capacity : 1 << 16;
    l->pair_slots = tn_calloc(l->slot_capacity, sizeof *l->pair_slots);
    for (size_t p = 0; p < l->n_pairs; p++) {
        size_t i = slot_of(l->pairs[p].key, l->slot_capacity);
        while (l->pair_slots[i]) i = (i + 1) & (l->slot_capacity - 1);
        l->pair_slots[i] = (uint32_t)p + 1;
    }
}

static Pair *pair_get(Learner *l, int32_t left, int32_t right) {
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t i = slot_of(key, l->slot_capacity);
    for (; l->pair_slots[i]; i = (i + 1) & (l->slot_capacity - 1))
        if (l->pairs[l->pair_slots[i] - 1].key == key) return &l->pairs[l->pair_slots[i] - 1];
    if (l->n_pairs == l->pair_capacity) {
        l->pair_capacity = l->pair_capacity ? 2 * l->pair_capacity : 1 << 14;
        l->pairs = realloc(l->pairs, l->pair_capacity * sizeof *l->pairs);
        if (!l->pairs) tn_die("out of memory for %zu pairs", l->pair_capacity);
    }
    l->pairs[l->n_pairs] = (Pair){key, 0, NULL, 0, 0, -1};
    l->pair_slots[i] = (uint32_t)++l->n_pairs;
    if (2 * l->n_pairs > l->slot_capacity) grow_pair_slots(l);
    return pair_get(l, left, right);
}

static int queue_before(QueueEntry a, QueueEntry b) {
    return a.count > b.count || (a.count == b.count && a.key < b.key);
}

static void queue_push(Learner *l, QueueEntry e) {
    if (l->queue_size == l->queue_capacity) {
        l->queue_capacity = l->queue_capacity ? 2 * l->queue_capacity : 1 << 14;
        l->queue = realloc(l->queue, l->queue_capacity * sizeof *l->queue);
        if (!l->queue) tn_die("out of memory for the pair queue");
    }
    size_t i = l->queue_size++;
    while (i > 0 && queue_before(e, l->queue[(i - 1) / 2])) {
        l->queue[i] = l->queue[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    l->queue[i] = e;
}

static QueueEntry queue_pop(Learner *l) {
    QueueEntry top = l->queue[0], last = l->queue[--l->queue_size];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= l->queue_size) break;
        if (child + 1 < l->queue_size && queue_before(l->queue[child + 1], l->queue[child])) child++;
        if (!queue_before(l->queue[child], last)) break;
        l->queue[i] = l->queue[child];
        i = child;
    }
    l->queue[i] = last;
    return top;
}

/* Adds delta occurrences of (left, right) in word w; new occurrences also
 * list the word, and the pair is queued again after the merge. */
static void pair_add(Learner *l, int32_t left, int32_t right, int64_t delta, int32_t w, int32_t merge) {
    if (left < 0 || right < 0) return;
    Pair *p = pair_get(l, left, right);
    p->count += delta;
    if (delta > 0 && (p->n_words == 0 || p->words[p->n_words - 1] != w)) {
        if (p->n_words == p->word_capacity) {
            p->word_capacity = p->word_capacity ? 2 * p->word_capacity : 4;
            p->words = realloc(p->words, (size_t)p->word_capacity * sizeof *p->words);
            if (!p->words) tn_die("out of memory for pair occurrences");
        }
        p->words[p->n_words++] = w;
    }
    if (p->changed != merge) {
        p->changed = merge;
        if (l->n_changed == l->changed_capacity) {
            l->changed_capacity = l->changed_capacity ? 2 * l->changed_capacity : 1024;
            l->changed = realloc(l->changed, l->changed_capacity * sizeof *l->changed);
            if (!l->changed) tn_die("out of memory for changed pairs");
        }
        l->changed[l->n_changed++] = (int32_t)(p - l->pairs);
    }
}

static int32_t add_piece(Learner *l, const char *piece, size_t len) {
    size_t e = tn_strmap_insert(&l->piece_ids, piece, len);
    if (e < (size_t)l->n_pieces) return (int32_t)l->piece_ids.values[e];
    if (l->n_pieces == l->piece_capacity) {
        l->piece_capacity = l->piece_capacity ? 2 * l->piece_capacity : 1024;
        l->pieces = realloc(l->pieces, (size_t)l->piece_capacity * sizeof *l->pieces);
        if (!l->pieces) tn_die("out of memory for pieces");
    }
    char *copy = tn_malloc(len + 1);
    memcpy(copy, piece, len);
    copy[len] = '\0';
    l->pieces[l->n_pieces] = copy;
    l->piece_ids.values[e] = l->n_pieces;
    return l->n_pieces++;
}

/* Replaces every (a, b) in word w by z, left to right, updating the counts
 * of the pairs around each replacement. */
static void merge_in_word(Learner *l, int32_t w, int32_t a, int32_t b, int32_t z, int32_t merge) {
    int32_t *s = l->symbols + l->word_start[w];
    int32_t n = l->word_length[w], j = 0;
    int64_t c = l->word_count[w];
    for (int32_t i = 0; i < n;) {
        if (i + 1 < n && s[i] == a && s[i + 1] == b) {
            if (j > 0) {
                pair_add(l, s[j - 1], a, -c, w, merge);
                pair_add(l, s[j - 1], z, c, w, merge);
            }
            if (i + 2 < n) {
                pair_add(l, b, s[i + 2], -c, w, merge);
                pair_add(l, z, s[i + 2], c, w, merge);
            }
            pair_add(l, a, b, -c, w, merge);
            s[j++] = z;
            i += 2;
        } else {
            s[j++] = s[i++];
        }
    }
    l->word_length[w] = j;
}

static void learner_free(Learner *l) {
    free(l->symbols);
    free(l->word_start);
    free(l->word_length);
    free(l->word_count);
    free(l->stamp);
    for (size_t p = 0; p < l->n_pairs; p++) free(l->pairs[p].words);
    free(l->pairs);
    free(l->pair_slots);
    free(l->queue);
    free(l->changed);
    tn_strmap_free(&l->piece_ids);
}

/* Turns the counted words into symbol sequences over the initial pieces. */
static void load_words(Learner *l, const TnStrMap *words, const int32_t *char_ids) {
    size_t total = 0;
    for (size_t e = 0; e < words->size; e++) total += words->key_offset[e + 1] - words->key_offset[e];
    l->n_words = words->size;
    l->symbols = tn_malloc((total + 1) * sizeof *l->symbols);
    l->word_start = tn_malloc((l->n_words + 1) * sizeof *l->word_start);
    l->word_length = tn_malloc((l->n_words + 1) * sizeof *l->word_length);
    l->word_count = tn_malloc((l->n_words + 1) * sizeof *l->word_count);
    l->stamp = tn_malloc((l->n_words + 1) * sizeof *l->stamp);
    size_t at = 0;
    for (size_t e = 0; e < words->size; e++) {
        size_t len;
        const char *key = tn_strmap_key(words, e, &len);
        l->word_start[e] = at;
        FOR_EACH_WORD_CHAR(key, len, cp, l->symbols[at++] = cp == UINT32_MAX ? -1 : char_ids[cp]);
        l->word_length[e] = (int32_t)(at - l->word_start[e]);
        l->word_count[e] = words->values[e];
        l->stamp[e] = -1;
    }
}

static void learn_merges(Learner *l, int target_pieces, int64_t min_frequency, int progress) {
    grow_pair_slots(l);
    for (size_t w = 0; w < l->n_words; w++) {
        const int32_t *s = l->symbols + l->word_start[w];
        for (int32_t i = 0; i + 1 < l->word_length[w]; i++)
            pair_add(l, s[i], s[i + 1], l->word_count[w], (int32_t)w, -1);
    }
    for (size_t p = 0; p < l->n_pairs; p++)
        if (l->pairs[p].count > 0) queue_push(l, (QueueEntry){l->pairs[p].count, l->pairs[p].key});
    TnProgress bar;
    if (progress) tn_progress_start(&bar, "merges", "merges", target_pieces - l->n_pieces);
    int first = l->n_pieces;
    char joined[2 * 4096];
    while (l->n_pieces < target_pieces && l->queue_size > 0) {
        QueueEntry top = queue_pop(l);
        int32_t a = (int32_t)(top.key >> 32), b = (int32_t)(uint32_t)top.key;
        Pair *p = pair_get(l, a, b);
        if (p->count != top.count) { /* stale: requeue with the current count */
            if (p->count > 0) queue_push(l, (QueueEntry){p->count, p->key});
            continue;
        }
        if (top.count < min_frequency) break;
        size_t na = strlen(l->pieces[a]), nb = strlen(l->pieces[b]);
        if (na + nb > sizeof joined) { p->count = 0; continue; } /* absurdly long: never merged */
        memcpy(joined, l->pieces[a], na);
        memcpy(joined + na, l->pieces[b], nb);
        int32_t z = add_piece(l, joined, na + nb), merge = l->n_merges;
        l->merges = realloc(l->merges, ((size_t)merge + 1) * sizeof *l->merges);
        if (!l->merges) tn_die("out of memory for merges");
        l->merges[l->n_merges++] = (TnMerge){a, b};
        /* The occurrence list may grow while we walk it (pairs with z are
         * other pairs), so walk a snapshot of its length. */
        int32_t n_words = p->n_words;
        int32_t *words = p->words;
        p->words = NULL;
        p->n_words = p->word_capacity = 0;
        l->n_changed = 0;
        for (int32_t i = 0; i < n_words; i++) {
            int32_t w = words[i];
            if (l->stamp[w] == merge) continue;
            l->stamp[w] = merge;
            merge_in_word(l, w, a, b, z, merge);
        }
        free(words);
        for (size_t i = 0; i < l->n_changed; i++) {
            const Pair *q = &l->pairs[l->changed[i]];
            if (q->count > 0) queue_push(l, (QueueEntry){q->count, q->key});
        }
        if (progress) tn_progress_update(&bar, l->n_pieces - first, NULL);
    }
    if (progress) tn_progress_finish(&bar, l->n_pieces - first, NULL);
}

static int learn(TnBpe *bpe, const TnStrMap *words, const TnTrainOptions *opt, TnTrainStats *stats, TnError *err) {
    int reserved = FIRST_CHAR_ID + opt->n_specials;
    if (opt->vocab_size < reserved + 1)
        return tn_fail(err, "a vocabulary of %d cannot hold the %d control and byte pieces and \"▁\"",
                       opt->vocab_size, reserved);
    double start = tn_now();
    Learner l;
    memset(&l, 0, sizeof l);
    tn_strmap_init(&l.piece_ids);
    static const char *const controls[N_CONTROLS] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < N_CONTROLS; i++) add_piece(&l, controls[i], strlen(controls[i]));
    for (int byte = 0; byte < 256; byte++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", byte);
        add_piece(&l, name, 6);
    }
    uint32_t *chars = tn_malloc((size_t)(opt->vocab_size - reserved) * sizeof *chars);
    int n_chars = choose_characters(words, opt->character_coverage, opt->vocab_size - reserved, chars);
    int32_t *char_ids = tn_malloc(TN_CODEPOINT_LIMIT * sizeof *char_ids);
    memset(char_ids, 0xff, TN_CODEPOINT_LIMIT * sizeof *char_ids);
    for (int i = 0; i < n_chars; i++) {
        char utf8[4];
        char_ids[chars[i]] = add_piece(&l, utf8, (size_t)tn_utf8_encode(chars[i], utf8));
    }
    free(chars);
    load_words(&l, words, char_ids);
    free(char_ids);
    learn_merges(&l, opt->vocab_size - opt->n_specials, opt->min_frequency, opt->progress);
    for (int i = 0; i < opt->n_specials; i++) {
        int before = l.n_pieces;
        if (add_piece(&l, opt->specials[i], strlen(opt->specials[i])) < before) {
            tn_fail(err, "the extra control token \"%s\" is already a piece", opt->specials[i]);
            learner_free(&l);
            for (int p = 0; p < l.n_pieces; p++) free(l.pieces[p]);
            free(l.pieces);
            free(l.merges);
            return -1;
        }
    }
    uint8_t *special = tn_calloc((size_t)l.n_pieces, 1);
    for (int i = 0; i < N_CONTROLS; i++) special[i] = 1;
    for (int i = l.n_pieces - opt->n_specials; i < l.n_pieces; i++) special[i] = 1;
    if (stats) {
        stats->distinct_words = (long long)words->size;
        stats->characters = n_chars;
        stats->merges = l.n_merges;
    }
    TnMerge *merges = l.merges;
    int n_merges = l.n_merges, n_pieces = l.n_pieces;
    char **pieces = l.pieces;
    learner_free(&l);
    TnBpeOptions options = {.metaspace = 1, .add_prefix = TN_PREFIX_ALWAYS, .byte_fallback = 1, .fuse_unk = 1};
    if (tn_bpe_init(bpe, pieces, special, n_pieces, &options, "training", err)) { free(merges); return -1; }
    if (tn_bpe_set_merges(bpe, merges, NULL, n_merges, "training", err)) return -1;
    TnSplit classes = tn_split_of(TN_SPLIT_CLASSES);
    TN_ASSERT(tn_split_at_least_as_fine(&bpe->split, &classes)); /* no merge crosses a training word */
    if (stats) stats->merge_seconds = tn_now() - start;
    return 0;
}

int tn_bpe_train_texts(TnBpe *bpe, const char *const *texts, const size_t *lengths, int n_texts,
                       const TnTrainOptions *opt, TnTrainStats *stats, TnError *err) {
    WordCounter counter;
    double start = tn_now();
    counter_init(&counter, opt->threads);
    count_batch(&counter, texts, lengths, n_texts);
    long long documents = counter.documents, words_seen = counter.words;
    TnStrMap words = counter_finish(&counter);
    TnTrainStats local = {0};
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    for (int i = 0; i < n_texts; i++) stats->bytes += (double)lengths[i];
    stats->documents = documents;
    stats->words = words_seen;
    stats->count_seconds = tn_now() - start;
    int rc = words_seen == 0 ? tn_fail(err, "no text to train a tokenizer on (%d texts, all empty)", n_texts)
                             : learn(bpe, &words, opt, stats, err);
    tn_strmap_free(&words);
    return rc;
}

int tn_bpe_train_files(TnBpe *bpe, const char *const *paths, int n_paths, const TnTrainOptions *opt,
                       TnTrainStats *stats, TnError *err) {
    TnTextBatches reader;
    TnTextBatch batch;
    WordCounter counter;
    TnProgress bar;
    TnTrainStats local = {0};
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    double start = tn_now();
    if (tn_text_batches_open(&reader, paths, n_paths, err)) return -1;
    counter_init(&counter, opt->threads);
    if (opt->progress) tn_progress_start(&bar, "counting words", "MB", (double)reader.total_bytes / 1e6);
    int n;
    while ((n = tn_text_batches_next(&reader, &batch, BATCH_BYTES, err)) > 0) {
        count_batch(&counter, batch.text, batch.length, n);
        stats->bytes += (double)batch.bytes;
        if (opt->progress) tn_progress_update(&bar, (double)reader.bytes_read / 1e6, NULL);
    }
    if (opt->progress) tn_progress_finish(&bar, (double)reader.bytes_read / 1e6, NULL);
    tn_text_batches_close(&reader);
    stats->documents = counter.documents;
    stats->words = counter.words;
    TnStrMap words = counter_finish(&counter);
    stats->count_seconds = tn_now() - start;
    int rc = n < 0 ? -1
           : stats->words == 0 ? tn_fail(err, "%s%s: no text to train a tokenizer on: %lld documents, no words",
                                         paths[0], n_paths > 1 ? " ..." : "", stats->documents)
           : learn(bpe, &words, opt, stats, err);
    tn_strmap_free(&words);
    return rc;
}
