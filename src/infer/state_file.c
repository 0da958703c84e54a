#include "infer/state_file.h"

#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/hash.h"

_Static_assert(sizeof(TnStateHeader) == 328, "the state header has no padding");

uint64_t tn_model_fingerprint(const TnModel *m) {
    const TnConfig *cfg = &m->config;
    int32_t shape[] = {cfg->vocab_size, cfg->dim, cfg->n_layers, cfg->n_heads, cfg->glu_dim, cfg->no_scale_embedding,
                       cfg->tie_word_embeddings};
    uint64_t hash = tn_fnv1a(TN_FNV_OFFSET, shape, sizeof shape);
    hash = tn_fnv1a(hash, cfg->use_lrpe, (size_t)cfg->n_layers);
    size_t total = m->layout.total, stride = total / 65536 + 1;
    for (size_t i = 0; i < total; i += stride) hash = tn_fnv1a(hash, &m->params[i], sizeof(float));
    return tn_fnv1a(hash, &m->params[total - 1], sizeof(float));
}

static void fill_identity(TnStateHeader *h, const TnSession *s) {
    const TnConfig *cfg = &s->model->config;
    memset(h, 0, sizeof *h);
    memcpy(h->magic, TN_STATE_MAGIC, sizeof TN_STATE_MAGIC);
    h->version = TN_STATE_VERSION;
    h->header_bytes = sizeof *h;
    h->fingerprint = tn_model_fingerprint(s->model);
    h->payload_floats = (uint64_t)cfg->vocab_size + s->state_floats;
    h->vocab_size = cfg->vocab_size;
    h->dim = cfg->dim;
    h->n_layers = cfg->n_layers;
    h->n_heads = cfg->n_heads;
    h->glu_dim = cfg->glu_dim;
}

/* Calls visit(piece, count, user) for each payload piece of sequence seq in
 * file order: the logits, then each layer's state. */
static int for_each_piece(const TnSession *s, int seq, int (*visit)(float *, size_t, void *), void *user) {
    if (visit(tn_session_logits(s, seq), (size_t)s->model->config.vocab_size, user)) return -1;
    for (int l = 0; l < s->model->config.n_layers; l++) {
        size_t count;
        float *state = tn_session_layer_state(s, seq, l, &count);
        if (visit(state, count, user)) return -1;
    }
    return 0;
}

static int checksum_piece(float *piece, size_t count, void *hash) {
    *(uint64_t *)hash = tn_fnv1a(*(uint64_t *)hash, piece, count * sizeof *piece);
    return 0;
}

typedef struct Writer {
    TnAtomicFile file;
    TnError *err;
} Writer;

static int write_piece(float *piece, size_t count, void *writer) {
    Writer *w = writer;
    return tn_atomic_write(&w->file, piece, count * sizeof *piece, w->err);
}

/* A device session's states live on the device (session.h). */
static int check_on_cpu(const TnSession *s, const char *path, TnError *err) {
    if (!s->device) return 0;
    return tn_fail(err, "%s: saved states hold a CPU session's states; this session runs on a device", path);
}

int tn_state_save(const TnSession *s, int seq, const char *path, TnError *err) {
    if (check_on_cpu(s, path, err)) return -1;
    TnStateHeader h;
    fill_identity(&h, s);
    h.position = s->position[seq];
    h.n_recent = tn_session_recent(s, seq, h.recent);
    h.checksum = TN_FNV_OFFSET;
    for_each_piece(s, seq, checksum_piece, &h.checksum);
    Writer w = {.err = err};
    if (tn_atomic_open(&w.file, path, err)) return -1;
    if (tn_atomic_write(&w.file, &h, sizeof h, err) || for_each_piece(s, seq, write_piece, &w)) {
        tn_atomic_abort(&w.file);
        return -1;
    }
    return tn_atomic_commit(&w.file, err);
}

typedef struct Reader {
    const float *next;
} Reader;

static int read_piece(float *piece, size_t count, void *reader) {
    Reader *r = reader;
    memcpy(piece, r->next, count * sizeof *piece);
    r->next += count;
    return 0;
}

/* Every check of a header read from path against the session's model. */
static int check_header(const TnStateHeader *h, const TnStateHeader *want, const char *data, size_t file_bytes,
                        const char *path, TnError *err) {
    if (memcmp(h->magic, want->magic, sizeof h->magic) != 0) return tn_fail(err, "%s is not a saved tnllm sequence (tnllm generate --save-state writes those)", path);
    if (h->version != want->version || h->header_bytes != want->header_bytes)
        return tn_fail(err, "%s: state file version %u is not the version %u this tnllm reads", path, h->version,
                       want->version);
    if (h->vocab_size != want->vocab_size || h->dim != want->dim || h->n_layers != want->n_layers ||
        h->n_heads != want->n_heads || h->glu_dim != want->glu_dim)
        return tn_fail(err,
                       "%s holds the state of another model (V=%d D=%d L=%d H=%d G=%d); this model is V=%d D=%d "
                       "L=%d H=%d G=%d",
                       path, h->vocab_size, h->dim, h->n_layers, h->n_heads, h->glu_dim, want->vocab_size, want->dim,
                       want->n_layers, want->n_heads, want->glu_dim);
    if (h->fingerprint != want->fingerprint)
        return tn_fail(err,
                       "%s was saved from a model of the same shape with other weights (fingerprint %016llx, this "
                       "model %016llx)",
                       path, (unsigned long long)h->fingerprint, (unsigned long long)want->fingerprint);
    size_t expected = sizeof *h + want->payload_floats * sizeof(float);
    if (h->payload_floats != want->payload_floats || file_bytes != expected)
        return tn_fail(err, "%s is truncated or damaged: %zu bytes, a state of this model has %zu", path, file_bytes,
                       expected);
    if (h->position < 0 || h->n_recent < 0 || h->n_recent > TN_SESSION_RECENT || h->n_recent > h->position)
        return tn_fail(err, "%s is damaged: position %d with %d recent tokens", path, h->position, h->n_recent);
    for (int i = 0; i < h->n_recent; i++)
        if (h->recent[i] < 0 || h->recent[i] >= want->vocab_size)
            return tn_fail(err, "%s is damaged: recent token %d is outside the vocabulary", path, h->recent[i]);
    uint64_t sum = tn_fnv1a(TN_FNV_OFFSET, data + sizeof *h, file_bytes - sizeof *h);
    if (sum != h->checksum) return tn_fail(err, "%s is corrupted: its payload checksum does not match", path);
    return 0;
}

int tn_state_load(TnSession *s, int seq, const char *path, TnError *err) {
    if (check_on_cpu(s, path, err)) return -1;
    char *data;
    size_t size;
    if (tn_read_file(path, &data, &size, err)) return -1;
    TnStateHeader h, want;
    fill_identity(&want, s);
    if (size < sizeof h) {
        free(data);
        return tn_fail(err, "%s is truncated: %zu bytes, shorter than a state file header (%zu)", path, size, sizeof h);
    }
    memcpy(&h, data, sizeof h);
    if (check_header(&h, &want, data, size, path, err)) {
        free(data);
        return -1;
    }
    Reader r = {(const float *)(data + sizeof h)};
    for_each_piece(s, seq, read_piece, &r);
    tn_session_set_history(s, seq, h.position, h.recent, h.n_recent);
    free(data);
    return 0;
}
