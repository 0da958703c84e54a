/* `--device` of tnllm generate and eval (and train's --recompute, which
 * only a device takes), and the session behind it, on a
 * machine without a GPU (CI): the CPU is the default and tn_session_init_on
 * for it is tn_session_init; asking for cuda fails with status 1 and a
 * message saying why (built without CUDA; or no usable GPU), leaving
 * nothing allocated (the sanitizer build checks); the CPU-only options are
 * refused with --device cuda before anything is loaded; an unknown device
 * is named. On a machine with a GPU the cuda runs may succeed instead:
 * tests/cuda/check_infer compares them with the CPU there. */
#include <stdlib.h>
#include <string.h>

#include "infer/perplexity.h"
#include "infer/session.h"
#include "models.h"
#include "test.h"

/* A --device cuda run either worked (a GPU is there) or failed cleanly
 * with the reason this build gives. */
static int device_refused_or_ran(int rc, const char *out, const char *success) {
    if (rc == 0) return tn_device_cuda_built() && strstr(out, success) != NULL;
    if (rc != 1) return 0;
    if (!tn_device_cuda_built()) return strstr(out, "--device cuda: this tnllm was built without CUDA") != NULL;
    return strstr(out, "--device cuda: no usable GPU: ") != NULL; /* tn_cuda_device_check: the driver, or none */
}

static void check_sessions(const TnModel *m) {
    TnSession cpu, on;
    TnError err;
    int32_t prompt[40];
    for (int i = 0; i < 40; i++) prompt[i] = 3 + (i * 37) % (m->config.vocab_size - 3);
    tn_session_init(&cpu, m, 1, 16);
    CHECK(tn_session_init_on(&on, m, TN_DEVICE_CPU, 1, 16, &err) == 0 && on.device == NULL, "init_on cpu: %s",
          err.msg);
    CHECK(tn_session_prefill(&cpu, 0, prompt, 40, &err) == 0 && tn_session_prefill(&on, 0, prompt, 40, &err) == 0,
          "prefill: %s", err.msg);
    CHECK(memcmp(tn_session_logits(&cpu, 0), tn_session_logits(&on, 0), m->config.vocab_size * sizeof(float)) == 0,
          "init_on(cpu) computes what init does");
    tn_session_free(&cpu);
    tn_session_free(&on);

    TnSession gpu;
    int rc = tn_session_init_on(&gpu, m, TN_DEVICE_CUDA, 2, 16, &err);
    if (rc == 0) {
        CHECK(tn_device_cuda_built() && gpu.device, "a device session only where CUDA is built");
        tn_session_free(&gpu);
    } else {
        CHECK(strstr(err.msg, tn_device_cuda_built() ? "CUDA" : "built without CUDA") != NULL,
              "cuda session refused: %s", err.msg);
    }
    uint32_t stream[300];
    for (int i = 0; i < 300; i++) stream[i] = (uint32_t)(3 + (i * 11) % (m->config.vocab_size - 3));
    TnEvalResult r;
    rc = tn_eval_tokens((TnModel *)m, stream, 300, 100, 100, 2, TN_DEVICE_CUDA, 0, &r, &err);
    CHECK(rc == 0 ? tn_device_cuda_built() && r.n_scored == 297
                  : strstr(err.msg, tn_device_cuda_built() ? "CUDA" : "built without CUDA") != NULL,
          "eval on cuda (%d): %s", rc, err.msg);
}

int main(int argc, char **argv) {
    (void)argc;
    static char out[1 << 16];
    const char *gold = golden_dir(), *bin = tnllm_binary();
    TnModel m;
    if (golden_model(&m) == 0) {
        check_sessions(&m);
        tn_model_free(&m);
    }

    int rc = run_commandf(out, sizeof out, "%s generate -m %s -p Hi -n 3 --temp 0 --device cuda", bin, gold);
    CHECK(device_refused_or_ran(rc, out, "decode: 3 tokens"), "generate --device cuda (%d):\n%s", rc, out);
    rc = run_commandf(out, sizeof out, "%s eval -m %s --text README.md --ctx 64 --device cuda", bin, gold);
    CHECK(device_refused_or_ran(rc, out, "(cuda):"), "eval --device cuda (%d):\n%s", rc, out);
    rc = run_commandf(out, sizeof out, "%s generate -m %s -p Hi -n 3 --device cpu -t 1", bin, gold);
    CHECK(rc == 0 && strstr(out, "decode: 3 tokens"), "generate --device cpu (%d):\n%s", rc, out);
    rc = run_commandf(out, sizeof out, "%s eval -m %s --text README.md --ctx 64 --device cpu -t 1", bin, gold);
    CHECK(rc == 0 && strstr(out, "(cpu):") && strstr(out, "perplexity"), "eval --device cpu (%d):\n%s", rc, out);

    const char *cpu_only[] = {"--int8", "--save-state x.state", "--load-state x.state"};
    for (int i = 0; i < 3; i++) {
        rc = run_commandf(out, sizeof out, "%s generate -m /nonexistent -p Hi --device cuda %s", bin, cpu_only[i]);
        char flag[32];
        snprintf(flag, sizeof flag, "%.*s runs on the CPU only", (int)strcspn(cpu_only[i], " "), cpu_only[i]);
        CHECK(rc == 2 && strstr(out, flag), "generate --device cuda %s (%d):\n%s", cpu_only[i], rc, out);
    }
    rc = run_commandf(out, sizeof out, "%s eval -m /nonexistent --text README.md --device cuda --int8", bin);
    CHECK(rc == 2 && strstr(out, "--int8 scores on the CPU only"), "eval --device cuda --int8 (%d):\n%s", rc, out);
    rc = run_commandf(out, sizeof out, "%s generate -m %s --device tpu", bin, gold);
    CHECK(rc == 2 && strstr(out, "--device tpu: use cpu or cuda"), "generate --device tpu (%d):\n%s", rc, out);
    rc = run_commandf(out, sizeof out, "%s eval -m %s --text README.md --device tpu", bin, gold);
    CHECK(rc == 2 && strstr(out, "--device tpu: use cpu or cuda"), "eval --device tpu (%d):\n%s", rc, out);
    rc = run_commandf(out, sizeof out, "%s train --size tiny --data README.md -o /nonexistent --recompute layers", bin);
    CHECK(rc == 2 && strstr(out, "--recompute layers is for --device cuda"), "train --recompute on the CPU (%d):\n%s",
          rc, out);
    rc = run_commandf(out, sizeof out, "%s train --size tiny --data README.md -o /nonexistent --recompute all", bin);
    CHECK(rc == 2 && strstr(out, "--recompute all: use none, norms or layers"), "train --recompute all (%d):\n%s", rc,
          out);
    const char *commands[] = {"generate", "eval"};
    for (int i = 0; i < 2; i++) {
        rc = run_commandf(out, sizeof out, "%s %s --help", bin, commands[i]);
        CHECK(rc == 0 && strstr(out, "--device NAME") &&
                  strstr(out, tn_device_cuda_built() ? "built with CUDA" : "built without CUDA"),
              "%s --help names --device and the build (%d):\n%s", commands[i], rc, out);
    }
    return TEST_DONE(argv[0]);
}
