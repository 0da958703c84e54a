/* grad_reduce.c: the overlapped gradient reduction of grad_reduce.h. */
#include "dist/grad_reduce.h"

#include <string.h>

/* Parts the non-blocking all-reduce may split one part into (comm.h: a
 * request per 2^30 elements). */
static int pieces(size_t n) { return (int)(n >> 30) + 1; }

void tn_grad_reduce_init(TnGradReduce *g, const TnComm *comm, const TnModel *m, float *grads, int scatter) {
    memset(g, 0, sizeof *g);
    g->comm = comm;
    g->layout = &m->layout;
    g->n_layers = m->config.n_layers;
    g->grads = grads;
    g->scatter = scatter;
    /* every part in flight at once: the embedding, the layers, the head */
    int capacity = 0;
    for (int part = TN_PART_EMBED; part <= g->n_layers; part++) {
        size_t begin, end;
        tn_param_part_range(g->layout, g->n_layers, part, &begin, &end);
        capacity += pieces(end - begin);
    }
    g->requests = tn_comm_requests_new(comm, capacity);
}

void tn_grad_reduce_free(TnGradReduce *g) {
    tn_comm_requests_free(g->requests);
    memset(g, 0, sizeof *g);
}

void tn_grad_reduce_arm(TnGradReduce *g) {
    g->armed = 1;
    g->started = 0;
}

void tn_grad_reduce_part_done(TnModel *m, int part, void *user) {
    (void)m;
    TnGradReduce *g = user;
    if (!g->armed || g->failed) return;
    size_t begin, end;
    tn_param_part_range(g->layout, g->n_layers, part, &begin, &end);
    size_t n = g->layout->total;
    int rc = g->scatter ? tn_comm_reduce_scatter_sum_start(g->requests, g->grads, n, (TnRange){begin, end}, &g->error)
                        : tn_comm_all_reduce_sum_start(g->requests, g->grads + begin, end - begin, &g->error);
    /* let the reductions already started move while the backward computes */
    if (!rc) rc = tn_comm_progress(g->requests, &g->error);
    g->failed = rc != 0;
    g->started++;
}

int tn_grad_reduce_finish(TnGradReduce *g, TnError *err) {
    int parts = g->n_layers + 2, started = g->started;
    g->armed = 0;
    g->started = 0;
    if (tn_comm_wait_all(g->requests, err)) return -1;
    if (g->failed) {
        g->failed = 0;
        *err = g->error;
        return -1;
    }
    if (started != parts)
        return tn_fail(err, "gradient reduction: the armed backward finished %d of %d parts", started, parts);
    return 0;
}
