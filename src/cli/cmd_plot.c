/* tnllm plot: the loss curve of a training run (train/plot.h). */
#include <stdio.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "train/plot.h"

static void usage(void) {
    printf("usage: tnllm plot RUN_DIR\n"
           "       tnllm plot RUN_DIR/metrics.jsonl\n\n"
           "Draws RUN_DIR/metrics.jsonl (training loss per step, validation loss where measured) into\n"
           "RUN_DIR/loss.svg with gnuplot (Debian: gnuplot-nox). Works on a run that is still going. The\n"
           "metrics file may be named instead of its directory: the plot goes beside it.\n");
}

int cmd_plot(int argc, char **argv) {
    const char *run_dir = NULL;
    TnArgs a;
    args_init(&a, "plot", argc, argv);
    while (args_next(&a)) {
        if (args_is(&a, "-h", "--help")) { usage(); return 0; }
        else if (!run_dir && args_current(&a)[0] != '-') run_dir = args_current(&a);
        else args_unknown(&a);
    }
    args_require(&a, run_dir, "RUN_DIR");
    char out[4200];
    TnError err;
    if (tn_plot_run(run_dir, out, sizeof out, &err)) tn_die("%s", err.msg);
    printf("wrote %s\n", out);
    return 0;
}
