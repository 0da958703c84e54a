/* grad_reduce.c: the overlapped gradient reduction of grad_reduce.h. */
#include "dist/grad_reduce.h"

#include <stdlib.h>
#include <string.h>

/* Parts the non-blocking all-reduce may split one part into (comm.h: a
 * request per TN_COMM_PIECE elements). */
static int pieces(size_t n) { return (int)(n / TN_COMM_PIECE) + 1; }

static TnRange part_range(const TnGradReduce *g, int part) {
    TnRange range;
    tn_param_part_range(g->layout, g->n_layers, part, &range.begin, &range.end);
    return range;
}

static size_t part_size(const TnGradReduce *g, int part) {
    TnRange range = part_range(g, part);
    return range.end - range.begin;
}

/* The largest of the layers' and the head's own ranges. */
static size_t largest_ring_part(const TnParamLayout *layout, int n_layers) {
    return tn_param_largest_part(layout, n_layers, 0);
}

size_t tn_grad_reduce_buffer_floats(const TnParamLayout *layout, int n_layers) {
    size_t begin, end;
    tn_param_part_range(layout, n_layers, TN_PART_EMBED, &begin, &end);
    return end - begin + TN_GRAD_RING * largest_ring_part(layout, n_layers);
}

static void unit_init(TnGradUnit *u, const TnComm *comm, size_t capacity) {
    u->capacity = capacity;
    u->buffer = tn_malloc((capacity ? capacity : 1) * sizeof *u->buffer);
    u->part = TN_GRAD_NO_PART;
    u->requests = tn_comm_requests_new(comm, 1);
}

static void unit_free(TnGradUnit *u) {
    free(u->buffer);
    tn_comm_requests_free(u->requests);
}

void tn_grad_reduce_init(TnGradReduce *g, const TnComm *comm, const TnModel *m, float *grads, int scatter) {
    memset(g, 0, sizeof *g);
    g->comm = comm;
    g->layout = &m->layout;
    g->n_layers = m->config.n_layers;
    g->tied = m->config.tie_word_embeddings;
    g->grads = grads;
    g->scatter = scatter;
    g->own = scatter ? tn_rank_range(m->layout.total, comm->size, comm->rank) : (TnRange){0, m->layout.total};
    if (scatter) {
        unit_init(&g->embed, comm, part_size(g, TN_PART_EMBED));
        for (int i = 0; i < TN_GRAD_RING; i++) unit_init(&g->ring[i], comm, largest_ring_part(&m->layout, g->n_layers));
        return;
    }
    /* every part in flight at once: the embedding, the layers, the head */
    int capacity = 0;
    for (int part = TN_PART_EMBED; part <= g->n_layers; part++) capacity += pieces(part_size(g, part));
    g->requests = tn_comm_requests_new(comm, capacity);
}

void tn_grad_reduce_free(TnGradReduce *g) {
    tn_comm_requests_free(g->requests);
    if (g->scatter) {
        unit_free(&g->embed);
        for (int i = 0; i < TN_GRAD_RING; i++) unit_free(&g->ring[i]);
    }
    memset(g, 0, sizeof *g);
}

void tn_grad_reduce_arm(TnGradReduce *g) {
    g->armed = 1;
    g->expected += g->n_layers + 2;
}

/* Waits for u's reduce-scatter and adds this rank's elements of the sum
 * (at the start of the buffer, comm.h) into the shard. */
static int unit_complete(TnGradReduce *g, TnGradUnit *u, TnError *err) {
    if (!u->in_flight) return 0;
    u->in_flight = 0;
    if (tn_comm_wait_all(u->requests, err)) return -1;
    TnRange mine = tn_range_intersect(g->own, part_range(g, u->part));
    float *shard = g->grads + (mine.begin - g->own.begin);
    for (size_t i = 0; i < mine.end - mine.begin; i++) shard[i] += u->buffer[i];
    return 0;
}

/* Readies u for part (its last reduction added in, zeroed) and points dw's
 * views of the part at it. */
static void unit_take(TnGradReduce *g, TnGradUnit *u, int part, TnWeights *dw) {
    TnError error;
    if (unit_complete(g, u, &error) && !g->failed) {
        g->failed = 1;
        g->error = error;
    }
    TnRange range = part_range(g, part);
    TN_ASSERT(range.end - range.begin <= u->capacity);
    u->part = part;
    memset(u->buffer, 0, (range.end - range.begin) * sizeof *u->buffer);
    tn_weights_bind_range(dw, g->layout, range.begin, range.end, u->buffer);
}

/* The unit that holds part's gradients. */
static TnGradUnit *unit_of(TnGradReduce *g, int part) {
    if (part == TN_PART_EMBED) return &g->embed;
    for (int i = 0; i < TN_GRAD_RING; i++)
        if (g->ring[i].part == part && !g->ring[i].in_flight) return &g->ring[i];
    return NULL;
}

void tn_grad_reduce_bind(TnModel *m, int part, TnWeights *dw, void *user) {
    (void)m;
    TnGradReduce *g = user;
    if (!g->armed && !g->failed) {
        g->failed = 1;
        tn_fail(&g->error, "gradient reduction: a backward under sharded gradients ran unarmed");
    }
    if (part == TN_PART_EMBED) {
        /* a tied embedding took its buffer with the head */
        if (!g->tied) unit_take(g, &g->embed, part, dw);
        return;
    }
    unit_take(g, &g->ring[g->next], part, dw);
    g->next = (g->next + 1) % TN_GRAD_RING;
    /* the head's logits read the tied embedding: its gradient starts here */
    if (part == g->n_layers && g->tied) unit_take(g, &g->embed, TN_PART_EMBED, dw);
}

/* Starts the reduce-scatter of part's buffer and lets those in flight move. */
static int scatter_part(TnGradReduce *g, int part, TnError *err) {
    TnGradUnit *u = unit_of(g, part);
    if (!u) return tn_fail(err, "gradient reduction: part %d finished without a buffer", part);
    if (tn_comm_reduce_scatter_part_start(u->requests, u->buffer, g->layout->total, part_range(g, part), err))
        return -1;
    u->in_flight = 1;
    TnGradUnit *units[TN_GRAD_RING + 1] = {&g->embed};
    for (int i = 0; i < TN_GRAD_RING; i++) units[i + 1] = &g->ring[i];
    for (int i = 0; i <= TN_GRAD_RING; i++)
        if (units[i]->in_flight && tn_comm_progress(units[i]->requests, err)) return -1;
    return 0;
}

void tn_grad_reduce_part_done(TnModel *m, int part, void *user) {
    (void)m;
    TnGradReduce *g = user;
    if (!g->armed || g->failed) return;
    TnRange range = part_range(g, part);
    int rc;
    if (g->scatter) {
        rc = scatter_part(g, part, &g->error);
    } else {
        rc = tn_comm_all_reduce_sum_start(g->requests, g->grads + range.begin, range.end - range.begin, &g->error);
        /* let the reductions already started move while the backward computes */
        if (!rc) rc = tn_comm_progress(g->requests, &g->error);
    }
    g->failed = rc != 0;
    g->started++;
    /* the embedding is the backward's last part */
    if (part == TN_PART_EMBED && g->scatter) g->armed = 0;
}

int tn_grad_reduce_finish(TnGradReduce *g, TnError *err) {
    int expected = g->expected, started = g->started, rc = 0;
    g->armed = 0;
    g->expected = g->started = 0;
    if (g->scatter) {
        rc = unit_complete(g, &g->embed, err);
        for (int i = 0; i < TN_GRAD_RING && !rc; i++) rc = unit_complete(g, &g->ring[i], err);
        for (int i = 0; i < TN_GRAD_RING; i++) g->ring[i].part = TN_GRAD_NO_PART;
        g->embed.part = TN_GRAD_NO_PART;
        g->next = 0;
    } else {
        rc = tn_comm_wait_all(g->requests, err);
    }
    if (rc) return -1;
    if (g->failed) {
        g->failed = 0;
        *err = g->error;
        return -1;
    }
    if (started != expected)
        return tn_fail(err, "gradient reduction: the armed backwards finished %d of %d parts", started, expected);
    return 0;
}
