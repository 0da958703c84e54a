/* plot.h: the loss curve of a run, drawn by gnuplot (gnuplot-nox).
 *
 * Reads RUN_DIR/metrics.jsonl and writes RUN_DIR/loss.svg: the training
 * loss per step and the validation loss where it was measured. The run is
 * named by its directory or by its metrics file (any regular file is taken
 * for one; the plot goes beside it); a path that is neither (missing, or a
 * directory without metrics.jsonl) is an error saying it is not a run. The SVG is
 * written under a temporary name and renamed (TnAtomicFile, util/fileio.h),
 * so a failed plot leaves the previous one; gnuplot missing or failing is an
 * error with its exit code.
 */
#ifndef TN_TRAIN_PLOT_H
#define TN_TRAIN_PLOT_H

#include "util/error.h"

#define TN_PLOT_FILE "loss.svg"

/* run: RUN_DIR or its metrics file. On success out_path (capacity cap)
 * receives the SVG's path. */
int tn_plot_run(const char *run, char *out_path, size_t cap, TnError *err);

#endif
