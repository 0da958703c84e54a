#include "util/progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

double tn_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void tn_progress_start(TnProgress *p, const char *label, const char *unit, double total) {
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->start = tn_now();
    p->last_draw = 0;
    p->is_tty = isatty(fileno(stderr));
}

static void format_eta(char *out, size_t cap, double seconds) {
    if (seconds < 0 || seconds > 1e8) { snprintf(out, cap, "--:--"); return; }
    long s = (long)seconds;
    if (s >= 3600) snprintf(out, cap, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    else snprintf(out, cap, "%02ld:%02ld", s / 60, s % 60);
}

static void draw(TnProgress *p, double done, const char *extra, int final) {
    double elapsed = tn_now() - p->start, rate = elapsed > 0 ? done / elapsed : 0;
    double frac = p->total > 0 ? done / p->total : 0;
    if (frac > 1) frac = 1;
    char bar[21], eta[32];
    int filled = (int)(frac * 20);
    for (int i = 0; i < 20; i++) bar[i] = i < filled ? '#' : '.';
    bar[20] = '\0';
    format_eta(eta, sizeof eta, rate > 0 ? (p->total - done) / rate : -1);
    fprintf(stderr, "%s%s [%s] %3.0f%% %.0f/%.0f %s, %.1f %s/s, ETA %s%s%s%s", p->is_tty ? "\r" : "", p->label, bar,
            100 * frac, done, p->total, p->unit, rate, p->unit, eta, extra ? "  " : "", extra ? extra : "",
            p->is_tty ? "\033[K" : "");
    if (!p->is_tty || final) fputc('\n', stderr);
    fflush(stderr);
}

void tn_progress_update(TnProgress *p, double done, const char *extra) {
    double now = tn_now();
    if (now - p->last_draw < (p->is_tty ? 0.1 : 10.0)) return;
    p->last_draw = now;
    draw(p, done, extra, 0);
}

void tn_progress_finish(TnProgress *p, double done, const char *extra) { draw(p, done, extra, 1); }
