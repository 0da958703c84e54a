#include "train/metrics.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"

static double number_or_nan(const cJSON *obj, const char *key) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(item) ? item->valuedouble : NAN;
}

/* Walks the lines of text (modified in place); fn gets each parsed line. */
typedef int (*LineFn)(const char *line, long long step, const cJSON *obj, void *user);

static int for_each_line(const char *path, char *text, LineFn fn, void *user, TnError *err) {
    int line_no = 0;
    for (char *line = text; *line;) {
        char *end = strchr(line, '\n');
        if (end) *end = '\0';
        line_no++;
        if (*line) {
            cJSON *obj = cJSON_Parse(line);
            const cJSON *step = obj ? cJSON_GetObjectItemCaseSensitive(obj, "step") : NULL;
            if (!cJSON_IsNumber(step)) {
                cJSON_Delete(obj);
                return tn_fail(err, "%s line %d: not a metrics object with a \"step\"", path, line_no);
            }
            int rc = fn(line, (long long)step->valuedouble, obj, user);
            cJSON_Delete(obj);
            if (rc) return tn_fail(err, "%s: cannot rewrite line %d", path, line_no);
        }
        if (!end) break;
        line = end + 1;
    }
    return 0;
}

typedef struct KeepLines {
    TnAtomicFile *out;
    long long keep_through;
    TnError *err;
} KeepLines;

static int keep_line(const char *line, long long step, const cJSON *obj, void *user) {
    (void)obj;
    KeepLines *k = user;
    if (step > k->keep_through) return 0;
    return tn_atomic_write(k->out, line, strlen(line), k->err) || tn_atomic_write(k->out, "\n", 1, k->err);
}

/* Rewrites path keeping the lines of steps <= keep_through. */
static int truncate_metrics(const char *path, long long keep_through, TnError *err) {
    if (!tn_file_exists(path)) return 0;
    char *text;
    if (tn_read_file(path, &text, NULL, err)) return -1;
    TnAtomicFile out;
    if (tn_atomic_open(&out, path, err)) { free(text); return -1; }
    KeepLines k = {&out, keep_through, err};
    int rc = for_each_line(path, text, keep_line, &k, err);
    free(text);
    if (rc) { tn_atomic_abort(&out); return -1; }
    return tn_atomic_commit(&out, err);
}

int tn_metrics_open(TnMetrics *mt, const char *run_dir, long long keep_through, TnError *err) {
    memset(mt, 0, sizeof *mt);
    if (tn_path_join(mt->path, sizeof mt->path, run_dir, TN_METRICS_FILE, err)) return -1;
    if (keep_through >= 0 && truncate_metrics(mt->path, keep_through, err)) return -1;
    mt->fp = fopen(mt->path, keep_through >= 0 ? "a" : "w");
    if (!mt->fp) return tn_fail(err, "%s: cannot open for writing: %s", mt->path, strerror(errno));
    return 0;
}

static int flushed(TnMetrics *mt, int printed, TnError *err) {
    if (printed < 0 || fflush(mt->fp) != 0) return tn_fail(err, "%s: cannot write: %s", mt->path, strerror(errno));
    return 0;
}

/* Room for any finite double in the formats below: "%.6f" of DBL_MAX is 316 characters. */
#define JSON_NUMBER_CHARS 320

/* A number as JSON, in text (JSON_NUMBER_CHARS bytes): printed by format
 * where finite, else null (JSON has no NaN or infinity; the reader takes
 * null for NaN). */
static const char *json_number(char *text, const char *format, double value) {
    if (!isfinite(value)) return "null";
    snprintf(text, JSON_NUMBER_CHARS, format, value);
    return text;
}

int tn_metrics_log_step(TnMetrics *mt, long long step, double loss, double lr, double grad_norm, long long tokens,
                        double tokens_per_s, double elapsed, TnError *err) {
    char text[5][JSON_NUMBER_CHARS];
    int n = fprintf(mt->fp,
                    "{\"step\": %lld, \"loss\": %s, \"lr\": %s, \"grad_norm\": %s, \"tokens\": %lld, "
                    "\"tokens_per_s\": %s, \"elapsed_s\": %s}\n",
                    step, json_number(text[0], "%.6f", loss), json_number(text[1], "%.6g", lr),
                    json_number(text[2], "%.6g", grad_norm), tokens, json_number(text[3], "%.1f", tokens_per_s),
                    json_number(text[4], "%.3f", elapsed));
    return flushed(mt, n, err);
}

int tn_metrics_log_eval(TnMetrics *mt, long long step, double val_loss, TnError *err) {
    char text[JSON_NUMBER_CHARS];
    int n = fprintf(mt->fp, "{\"step\": %lld, \"val_loss\": %s}\n", step, json_number(text, "%.6f", val_loss));
    return flushed(mt, n, err);
}

void tn_metrics_close(TnMetrics *mt) {
    if (mt->fp) fclose(mt->fp);
    mt->fp = NULL;
}

typedef struct Visit {
    TnMetricsVisitor fn;
    void *user;
} Visit;

static int visit_line(const char *line, long long step, const cJSON *obj, void *user) {
    (void)line;
    Visit *v = user;
    v->fn(step, number_or_nan(obj, "loss"), number_or_nan(obj, "val_loss"), v->user);
    return 0;
}

int tn_metrics_read(const char *path, TnMetricsVisitor fn, void *user, TnError *err) {
    char *text;
    if (tn_read_file(path, &text, NULL, err)) return -1;
    Visit v = {fn, user};
    int rc = for_each_line(path, text, visit_line, &v, err);
    free(text);
    return rc;
}
