/* progress.h: progress lines for long work.
 *
 * On a terminal the line is redrawn in place (\r) at most 10 times a
 * second; when stderr is a file or a pipe a line is printed every 10 s, so
 * logs stay readable. The line shows done/total, a bar, the rate in `unit`/s
 * and the ETA, followed by the caller's own text.
 */
#ifndef TN_UTIL_PROGRESS_H
#define TN_UTIL_PROGRESS_H

typedef struct TnProgress {
    const char *label, *unit;
    double total;
    double start, last_draw;
    int is_tty;
} TnProgress;

/* Monotonic seconds. */
double tn_now(void);
void tn_progress_start(TnProgress *p, const char *label, const char *unit, double total);
/* done: units finished so far; extra may be NULL. */
void tn_progress_update(TnProgress *p, double done, const char *extra);
/* Draws the final state and ends the line. */
void tn_progress_finish(TnProgress *p, double done, const char *extra);

#endif
