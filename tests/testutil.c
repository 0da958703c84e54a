#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/rng.h"

int tn_tests_passed, tn_tests_failed;

double rel_l2_f32_f64(const float *a, const double *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
    }
    return sqrt(num / (den > 0 ? den : 1e-300));
}

double rel_l2_f32_f32(const float *a, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return sqrt(num / (den > 0 ? den : 1e-300));
}

uint64_t test_seed(void) {
    const char *env = getenv("TN_TEST_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    printf("seed %llu (replay with TN_TEST_SEED=%llu)\n", (unsigned long long)seed, (unsigned long long)seed);
    return seed;
}

unsigned long long test_cli_seed(void) { return test_seed() % (1ULL << 61); }

TnConfig test_config(int vocab, int dim, int layers, int heads, int glu, unsigned lrpe_mask) {
    TnConfig cfg;
    tn_config_defaults(&cfg);
    cfg.vocab_size = vocab;
    cfg.dim = dim;
    cfg.n_layers = layers;
    cfg.n_heads = heads;
    cfg.glu_dim = glu;
    for (int l = 0; l < layers && l < TN_MAX_LAYERS; l++) cfg.use_lrpe[l] = (lrpe_mask >> l) & 1;
    return cfg;
}

const char *golden_dir(void) {
    const char *env = getenv("TN_GOLDEN_DIR");
    return env ? env : "tests/golden/tiny";
}

void make_temp_dir(char *out, size_t cap, const char *tag) {
    const char *base = getenv("TMPDIR");
    snprintf(out, cap, "%s/tnllm-%s-XXXXXX", base ? base : "/tmp", tag);
    if (!mkdtemp(out)) tn_die("cannot create a temporary directory %s", out);
}

void remove_tree(const char *path) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", path);
}

int same_file_bytes(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    TnError err;
    if (tn_read_file(a, &x, &nx, &err)) return 0;
    if (tn_read_file(b, &y, &ny, &err)) {
        free(x);
        return 0;
    }
    int same = nx == ny && memcmp(x, y, nx) == 0;
    free(x);
    free(y);
    return same;
}

int run_command(const char *cmd, char *out, size_t cap) {
    char full[8192];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void check_value(int ok, const char *what, double value, double tolerance) {
    printf("%s %-64s %.3e (tolerance %.0e)\n", ok ? "ok  " : "FAIL", what, value, tolerance);
    if (ok) tn_tests_passed++;
    else tn_tests_failed++;
}

int run_commandf(char *out, size_t cap, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return run_command(cmd, out, cap);
}

void print_rank_counts(const char *tag, int rank) {
    printf("%s rank %d: %d passed, %d failed\n", tag, rank, tn_tests_passed, tn_tests_failed);
}

void check_ranks_passed(const char *cmd, int ranks, const char *tag) {
    static char output[65536];
    int rc = run_command(cmd, output, sizeof output), clean = 0;
    size_t tag_length = strlen(tag);
    for (const char *line = output; (line = strstr(line, tag)); line++) {
        int rank, passed, failed;
        if (sscanf(line + tag_length, " rank %d: %d passed, %d failed", &rank, &passed, &failed) == 3 &&
            passed > 0 && failed == 0)
            clean++;
    }
    CHECK(rc == 0 && clean == ranks, "%s: exit %d, %d of %d ranks passed:\n%s", cmd, rc, clean, ranks, output);
}

const char *tnllm_binary(void) {
    const char *bin = getenv("TNLLM");
    return bin ? bin : "./tnllm";
}

void apply_switches(TnConfig *cfg, const char *switches) {
    char copy[512];
    snprintf(copy, sizeof copy, "%s", switches ? switches : "");
    for (char *save, *item = strtok_r(copy, " ", &save); item; item = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(item, '=');
        if (!eq) tn_die("switch '%s' is not key=value", item);
        *eq = 0;
        TnError err;
        if (tn_config_set_switch(cfg, item, eq + 1, &err)) tn_die("%s", err.msg);
    }
}

void randomize_norm_params(float *params, const TnParamLayout *layout, uint64_t seed) {
    TnRng rng;
    tn_rng_seed(&rng, seed, 77);
    for (int i = 0; i < layout->n_tensors; i++) {
        const TnTensorInfo *t = &layout->tensors[i];
        if (t->kind != TN_PARAM_NORM_GAIN && t->kind != TN_PARAM_NORM_BIAS) continue;
        for (size_t j = 0; j < t->numel; j++) params[t->offset + j] = (float)tn_rng_uniform(&rng) - 0.5f;
        if (t->kind == TN_PARAM_NORM_GAIN)
            for (size_t j = 0; j < t->numel; j++) params[t->offset + j] += 1.0f;
    }
}

void switched_model_init(TnModel *m, TnConfig *cfg, const char *switches, uint64_t seed) {
    apply_switches(cfg, switches);
    TnError err;
    CHECK(tn_config_validate(cfg, &err) == 0, "config %s: %s", switches ? switches : "", err.msg);
    tn_model_init(m, cfg, seed);
}

int check_mpi_available(void) {
#ifdef TN_MPI
    int built = 1;
#else
    int built = 0;
#endif
    char output[256];
    CHECK(built, "this build has no MPI (make found no mpicc): install libopenmpi-dev and openmpi-bin, then rebuild "
                 "(CI's .ci/run does)");
    int found = run_command("command -v mpirun", output, sizeof output) == 0;
    CHECK(found, "mpirun not found: install openmpi-bin and libopenmpi-dev (CI's .ci/run does)");
    return built && found;
}
