/* test_plan: the planner's arithmetic (dist/plan.h) against numbers worked
 * out by hand for a small model, and the 175B model's parameter split; the
 * layouts it lists are those the GPU trainer takes (tensor parallelism at
 * ZeRO 0 or 1: train/step_device.h tn_step_device_tp_check).
 *
 * The small model: V 100, D 32, L 2, H 4 (d 8), G 64, tied embedding,
 * SRMSNorm (no gains), the output gate, LRPE on layer 0 only.
 *   per layer: W_qkvu 4*32*32 = 4096, W_o 1024, W_1, W_2, W_3 3*64*32 = 6144
 *   -> 11264; theta of layer 0: H d = 32.
 *   split = 2 * 11264 + 32 = 22560, replicated = the embedding 3200,
 *   largest layer 11296; the head gathers the tied embedding (no final
 *   norm parameters): largest outer part 3200.
 * tp 2, dp 4, micro-batch 3 x 16 tokens (48):
 *   Psi = 22560 / 2 + 3200 = 14480
 *   ZeRO-2: weights 2 Psi = 28960, gradients 2 Psi / 4 = 7240 plus the
 *           backward's buffers: the embedding 3200 and two of the largest
 *           layer share or head (no parameters of its own) 11296 / 2:
 *           2 * (3200 + 2 * 5648) = 28992 -> 36232, optimizer 12 Psi / 4 = 43440
 *   ZeRO-3: weights 7240, gather one part: 2 * max(11296 / 2, 3200) = 11296
 *   activations: checkpoints 2*48*32*2 = 6144; one layer
 *     2*48*(4*32 + (128 + 2*4*16 + 3*32)/2 + 3*64/2) = 2*48*400 = 38400;
 *     logits 4*48*100 = 19200 -> 63744
 *   totals: ZeRO-2 172376, ZeRO-3 161952.
 * All exact in double: compared with ==.
 */
#include <stdio.h>
#include <string.h>

#include "dist/plan.h"
#include "dist/tensor_parallel.h"
#include "test.h"
#include "train/step_device.h"

int main(int argc, char **argv) {
    (void)argc;
    TnConfig cfg = test_config(100, 32, 2, 4, 64, 1u);
    TnPlanCounts counts;
    TnError err;
    tn_plan_counts(&cfg, &counts);
    CHECK(counts.split == 22560 && counts.replicated == 3200 && counts.largest_layer == 11296 &&
              counts.largest_outer == 3200 && counts.embed == 3200 && counts.head == 0,
          "counts: split %.0f replicated %.0f largest layer %.0f largest outer part %.0f embedding %.0f head %.0f",
          counts.split, counts.replicated, counts.largest_layer, counts.largest_outer, counts.embed, counts.head);
    CHECK(tn_plan_activation_bytes(&cfg, 2, 3, 16) == 63744, "activations %.0f, expected 63744",
          tn_plan_activation_bytes(&cfg, 2, 3, 16));

    TnPlanRow two = tn_plan_layout(&cfg, &counts, 2, 4, 2, 3, 16, 172376);
    CHECK(two.weights == 28960 && two.gradients == 36232 && two.optimizer == 43440 && two.gather == 0 &&
              two.total == 172376 && two.fits,
          "ZeRO-2: %.0f %.0f %.0f %.0f total %.0f fits %d", two.weights, two.gradients, two.optimizer, two.gather,
          two.total, two.fits);
    TnPlanRow three = tn_plan_layout(&cfg, &counts, 2, 4, 3, 3, 16, 161951);
    CHECK(three.weights == 7240 && three.gradients == 36232 && three.optimizer == 43440 && three.gather == 11296 &&
              three.total == 161952 && !three.fits,
          "ZeRO-3: %.0f %.0f %.0f %.0f total %.0f fits %d", three.weights, three.gradients, three.optimizer,
          three.gather, three.total, three.fits);

    /* 8 GPUs: tp 8 cannot split 4 heads, so tp 1 with ZeRO 0..3, tp 2 and 4
     * with the stages the GPU trainer splits the model at (0 and 1) */
    TnPlanRow rows[32];
    int n = tn_plan_layouts(&cfg, 8, 8, 3, 16, 1e9, rows, 32);
    CHECK(n == 8 && rows[0].tp == 1 && rows[0].dp == 8 && rows[3].tp == 1 && rows[3].zero == 3 && rows[7].tp == 4 &&
              rows[7].dp == 2 && rows[7].zero == 1,
          "%d layouts of 8 GPUs, expected 8 (tp 1 ZeRO 0-3, tp 2 and 4 ZeRO 0-1)", n);
    /* every listed layout is one the GPU trainer takes (its own check of --tp with --zero) */
    int refused = 0;
    for (int i = 0; i < n; i++) refused += rows[i].tp > 1 && tn_step_device_tp_check(rows[i].zero, &err) != 0;
    CHECK(refused == 0, "%d of the %d layouts listed are --tp with a ZeRO stage the GPU trainer refuses", refused, n);
    CHECK(tn_step_device_tp_check(TN_TP_GPU_MAX_ZERO + 1, &err) != 0 && strstr(err.msg, "--zero 0 or 1"),
          "the GPU trainer takes --tp with ZeRO-%d: %s", TN_TP_GPU_MAX_ZERO + 1, err.msg);

    /* 175B (D 12288, L 88, G 32768, V 64000, tied): the embedding alone is
     * replicated; each layer splits 5 D^2 + 3 D G, plus D per LRPE layer */
    CHECK(tn_config_from_size(&cfg, "175B", &err) == 0, "175B: %s", err.msg);
    tn_plan_counts(&cfg, &counts);
    double D = 12288, G = 32768, lrpe = 0;
    for (int l = 0; l < cfg.n_layers; l++) lrpe += cfg.use_lrpe[l];
    CHECK(counts.replicated == 64000 * D, "175B replicated %.0f, expected %.0f", counts.replicated, 64000 * D);
    CHECK(counts.split == 88 * (5 * D * D + 3 * D * G) + lrpe * D, "175B split %.0f", counts.split);
    /* ZeRO-0 at tp 1 needs 16 bytes per parameter: far beyond 80 GiB */
    TnPlanRow replicated = tn_plan_layout(&cfg, &counts, 1, 64, 0, 1, 2048, 80.0 * (1 << 30));
    CHECK(!replicated.fits && replicated.weights == 2 * (counts.split + counts.replicated),
          "175B ZeRO-0 tp 1: weights %.0f fits %d", replicated.weights, replicated.fits);

    /* the command prints the layouts that fit, and refuses what cannot fit: 64 GPUs, tp 1 with
     * ZeRO 0..3 and tp 2, 4, 8 with ZeRO 0 and 1 (10 layouts; --tp 8 at ZeRO-3 would fit, but the GPU
     * trainer does not run it); 4 GPUs, tp 1 with ZeRO 0..3, tp 2 with 0 and 1, tp 4 with dp 1 and
     * no ZeRO stage (7) */
    char cmd[4096], output[16384];
    snprintf(cmd, sizeof cmd, "%s plan --size 175B --gpus 64 --gpu-mem 80 --all", tnllm_binary());
    CHECK(run_command(cmd, output, sizeof output) == 0 && strstr(output, "1 of 10 layouts fit") &&
              strstr(output, "   1   64     3 |") && strstr(output, "   8    8     1 |") &&
              !strstr(output, "   8    8     2 |") && !strstr(output, "   8    8     3 |"),
          "%s:\n%s", cmd, output);
    snprintf(cmd, sizeof cmd, "%s plan --size 175B --gpus 4 --gpu-mem 80", tnllm_binary());
    CHECK(run_command(cmd, output, sizeof output) == 1 && strstr(output, "none of 7 layouts fits"), "%s:\n%s", cmd,
          output);
    return TEST_DONE(argv[0]);
}
