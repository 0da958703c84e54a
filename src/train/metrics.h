/* metrics.h: the run directory's metrics.jsonl, one JSON object a line.
 *
 *   {"step": 12, "loss": 3.21, "lr": 0.001, "grad_norm": 0.8, "tokens": 98304,
 *    "tokens_per_s": 5000, "elapsed_s": 19.6}
 *   {"step": 12, "val_loss": 3.30}
 * tokens_per_s: this session's tokens a second since the end of its first
 * step (the first step's own rate on that step). A NaN or infinite number
 * (a diverged loss) is written as null, which reads back as NaN.
 * Lines are appended and flushed as they happen, so a crashed run keeps its
 * curve. A resumed run first drops the lines of steps after its checkpoint
 * (they will be trained again), rewriting the file atomically.
 */
#ifndef TN_TRAIN_METRICS_H
#define TN_TRAIN_METRICS_H

#include <stdio.h>

#include "util/error.h"

#define TN_METRICS_FILE "metrics.jsonl"

typedef struct TnMetrics {
    FILE *fp;
    char path[4096];
} TnMetrics;

/* Opens run_dir/metrics.jsonl for appending; keep_through >= 0 first drops
 * every line whose step is greater (a resume), < 0 starts a new file. */
int tn_metrics_open(TnMetrics *mt, const char *run_dir, long long keep_through, TnError *err);
int tn_metrics_log_step(TnMetrics *mt, long long step, double loss, double lr, double grad_norm, long long tokens,
                        double tokens_per_s, double elapsed, TnError *err);
int tn_metrics_log_eval(TnMetrics *mt, long long step, double val_loss, TnError *err);
void tn_metrics_close(TnMetrics *mt);

/* Calls fn for each line of a metrics file with its step and, where the
 * line has them, loss / val_loss (NaN where absent). Malformed lines fail,
 * naming the line. */
typedef void (*TnMetricsVisitor)(long long step, double loss, double val_loss, void *user);
int tn_metrics_read(const char *path, TnMetricsVisitor fn, void *user, TnError *err);

#endif
