#include "train/plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "train/metrics.h"
#include "util/fileio.h"

typedef struct Series {
    FILE *train, *val;
    long long n_train, n_val;
} Series;

static void add_point(long long step, double loss, double val_loss, void *user) {
    Series *s = user;
    if (!isnan(loss)) s->n_train++, fprintf(s->train, "%lld %.6f\n", step, loss);
    if (!isnan(val_loss)) s->n_val++, fprintf(s->val, "%lld %.6f\n", step, val_loss);
}

/* Runs gnuplot on the two data files, writing the SVG to svg_path. */
static int run_gnuplot(const char *run_dir, const char *train_path, const char *val_path, int with_val,
                       const char *svg_path, TnError *err) {
    FILE *gp = popen("gnuplot", "w");
    if (!gp) return tn_fail(err, "cannot start gnuplot: %s", strerror(errno));
    fprintf(gp,
            "set terminal svg size 900,540 dynamic background rgb 'white'\n"
            "set output '%s'\n"
            "set title \"%s\" noenhanced\n"
            "set xlabel 'step'\nset ylabel 'loss (nats/token)'\nset grid\nset key top right\n"
            "plot '%s' using 1:2 with lines linewidth 1.5 title 'train'%s%s%s\n",
            svg_path, run_dir, train_path, with_val ? ", '" : "", with_val ? val_path : "",
            with_val ? "' using 1:2 with linespoints pointtype 7 linewidth 2 title 'validation'" : "");
    int status = pclose(gp);
    if (status != 0)
        return tn_fail(err, "gnuplot failed (exit status %d) writing %s; is gnuplot-nox installed?",
                       WIFEXITED(status) ? WEXITSTATUS(status) : status, svg_path);
    return 0;
}

int tn_plot_run(const char *run, char *out_path, size_t cap, TnError *err) {
    char run_dir[4096], metrics[4096], train_path[4200], val_path[4200];
    struct stat st;
    if (stat(run, &st) == 0 && S_ISREG(st.st_mode)) { /* the metrics file: its directory is the run's */
        if (tn_path_directory(run, run_dir, sizeof run_dir, err)) return -1;
        snprintf(metrics, sizeof metrics, "%s", run);
    } else {
        snprintf(run_dir, sizeof run_dir, "%s", run);
        if (tn_path_join(metrics, sizeof metrics, run_dir, TN_METRICS_FILE, err)) return -1;
        if (stat(metrics, &st) != 0) return tn_fail(err, "%s: not a run directory (no %s)", run, TN_METRICS_FILE);
    }
    if (strchr(run_dir, '\'') || strchr(run_dir, '"'))
        return tn_fail(err, "%s: the run directory's name must not contain quotes (gnuplot paths)", run_dir);
    if (tn_path_join(out_path, cap, run_dir, TN_PLOT_FILE, err)) return -1;
    int pid = (int)getpid();
    snprintf(train_path, sizeof train_path, "%s/.plot-train.%d.dat", run_dir, pid);
    snprintf(val_path, sizeof val_path, "%s/.plot-val.%d.dat", run_dir, pid);
    Series s = {fopen(train_path, "w"), fopen(val_path, "w"), 0, 0};
    int rc = 0;
    if (!s.train || !s.val) rc = tn_fail(err, "%s: cannot write plot data: %s", run_dir, strerror(errno));
    else rc = tn_metrics_read(metrics, add_point, &s, err);
    if (s.train && fclose(s.train) != 0 && !rc) rc = tn_fail(err, "%s: cannot write: %s", train_path, strerror(errno));
    if (s.val && fclose(s.val) != 0 && !rc) rc = tn_fail(err, "%s: cannot write: %s", val_path, strerror(errno));
    if (!rc && s.n_train == 0) rc = tn_fail(err, "%s: no training steps to plot", metrics);
    /* gnuplot writes the SVG by name into the temporary file tn_atomic_open
     * created (truncating it, the same file): the commit's fsync of our
     * descriptor syncs its bytes too, as fsync syncs a file, not the writes
     * made through one descriptor. */
    TnAtomicFile svg;
    if (!rc && !(rc = tn_atomic_open(&svg, out_path, err))) {
        struct stat written;
        if (run_gnuplot(run_dir, train_path, val_path, s.n_val > 0, svg.tmp_path, err)) {
            tn_atomic_abort(&svg);
            rc = -1;
        } else if (stat(svg.tmp_path, &written) != 0 || written.st_size == 0) {
            /* a gnuplot that exits 0 without a plot must not replace the last one with nothing */
            rc = tn_fail(err, "%s: gnuplot wrote no plot (empty or missing %s)", out_path, svg.tmp_path);
            tn_atomic_abort(&svg);
        } else {
            rc = tn_atomic_commit(&svg, err);
        }
    }
    unlink(train_path);
    unlink(val_path);
    return rc;
}
