#!/bin/bash
# device_train.sh: the GPU training step on the device machine, in one call:
#  1. build/cuda/check_model: loss, logits, every gradient, AdamW against the CPU model;
#     build/cuda/check_baseline: the Transformer baseline's flash attention and
#     RoPE kernels against float64, its step against the CPU model;
#  2. build/cuda/bench_train: tokens/s and MFU (arguments: its SIZE:BATCH:T list);
#  3. ./tnllm train on the bundled corpus, the same run with --device cuda and
#     --device cpu (or, with CPU_REFERENCE=DIR, the committed CPU run in DIR
#     instead: no CPU training, no train_cpu.log), their loss curves compared
#     (scripts/compare_losses.py), then the GPU run's last checkpoint
#     continued on the CPU (--resume);
#  4. the same for 60 steps of a model with the ablation switches that change
#     the blocks (APE, LayerNorm, no gate, 1+elu, SiLU in SGLU), GPU vs CPU;
#  5. determinism: a GPU run stopped at step 40 and resumed to 60 against an
#     uninterrupted 60-step GPU run, bit for bit (the metrics but their
#     timings, the final weights; the learning rate is constant after the
#     warmup, so the stopped run's --steps 40 leaves the schedule alone),
#     and the run's last validation (on the GPU, every window of val.bin)
#     against `tnllm eval --device cpu` of the same weights: within 1%.
# Uses the binaries built here by `make` (carried along with the shared
# libraries they link, in LIB_DIR if set: scripts/carry_libs.sh); cuBLAS(Lt) comes from the machine's
# CUDA or its Python nvidia-cublas package. Logs go to $OUT: device.txt,
# check_model.log, check_baseline.log, bench_train.log, train_cuda.log, train_cpu.log,
# resume_cpu.log, compare.log, switched_cuda.log, switched_cpu.log,
# compare_switched.log, determinism_full.log, determinism_resumed.log,
# val_cpu.log, determinism.log. PARTS (default "checks bench curves switched
# determinism") picks the parts to run: curves are 3 and 4's CPU runs take
# minutes, the others seconds. Exit status: non-zero if a check failed.
set -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device_train}
. scripts/device_env.sh
PARTS=${PARTS:-checks bench curves switched determinism}
want() { [[ " $PARTS " == *" $1 "* ]]; }
status=0
if want checks; then
    build/cuda/check_model "${SEED:-$RANDOM}" 2>&1 | tee "$OUT/check_model.log" || status=1
    build/cuda/check_baseline "${SEED:-$RANDOM}" 2>&1 | tee "$OUT/check_baseline.log" || status=1
fi
want bench && { build/cuda/bench_train "$@" 2>&1 | tee "$OUT/bench_train.log" || status=1; }
RUNS=$(mktemp -d)
run="--size 15M --data data/corpus.jsonl --ctx 256 --micro-batch 16 --batch-tokens 4096 --warmup 20 --lr 2e-3
     --eval-every 100 --eval-windows 16 --save-every 100 --log-every 20"
# CPU_REFERENCE=DIR: the CPU run's metrics.jsonl is taken from DIR (made by
# the same command on another machine: bench/reference/README.md) instead
# of training it here, minutes of device time; RESUME_STEPS (default 40):
# the steps the CPU continues the GPU run for.
if want curves; then
    ./tnllm train $run --steps 200 --device cuda -o "$RUNS/cuda" 2>&1 | tee "$OUT/train_cuda.log" || status=1
    cpu_run=${CPU_REFERENCE:-$RUNS/cpu}
    if [ -z "${CPU_REFERENCE:-}" ]; then
        ./tnllm train $run --steps 200 --device cpu -o "$RUNS/cpu" 2>&1 | tee "$OUT/train_cpu.log" || status=1
    fi
    python3 scripts/compare_losses.py "$RUNS/cuda" "$cpu_run" 2>&1 | tee "$OUT/compare.log" || status=1
    ./tnllm train $run --steps $((200 + ${RESUME_STEPS:-40})) --device cpu --resume -o "$RUNS/cuda" 2>&1 |
        tee "$OUT/resume_cpu.log" || status=1
    cp "$RUNS/cuda/metrics.jsonl" "$OUT/metrics_cuda_then_cpu.jsonl"
    cp "$cpu_run/metrics.jsonl" "$OUT/metrics_cpu.jsonl"
fi
if want switched; then
    switched="--pe ape --norm layernorm --gate off --gla-act 1+elu --glu-act silu --steps 60"
    ./tnllm train $run $switched --device cuda -o "$RUNS/switched_cuda" 2>&1 | tee "$OUT/switched_cuda.log" || status=1
    ./tnllm train $run $switched --device cpu -o "$RUNS/switched_cpu" 2>&1 | tee "$OUT/switched_cpu.log" || status=1
    python3 scripts/compare_losses.py "$RUNS/switched_cuda" "$RUNS/switched_cpu" 2>&1 |
        tee "$OUT/compare_switched.log" || status=1
fi
if want determinism; then
    det="--size 15M --data data/corpus.jsonl --ctx 256 --micro-batch 16 --batch-tokens 4096 --warmup 10 --lr 2e-3
         --min-lr-ratio 1 --eval-every 20 --eval-windows 1000000 --save-every 20 --log-every 20 --device cuda"
    ./tnllm train $det --steps 60 -o "$RUNS/det_full" 2>&1 | tee "$OUT/determinism_full.log" || status=1
    {
        ./tnllm train $det --steps 40 -o "$RUNS/det_resumed" &&
            ./tnllm train $det --steps 60 --resume -o "$RUNS/det_resumed"
    } 2>&1 | tee "$OUT/determinism_resumed.log" || status=1
    ./tnllm eval -m "$RUNS/det_full/model" --tokens "$RUNS/det_full/val.bin" --ctx 257 --stride 256 --batch 16 \
        --device cpu 2>&1 | tee "$OUT/val_cpu.log" || status=1
    timeless() { sed -E 's/, "tokens_per_s": [^,]*, "elapsed_s": [^}]*//' "$1/metrics.jsonl"; }
    gpu_val=$(sed -nE 's/^\{"step": 60, "val_loss": ([0-9.]+)\}$/\1/p' "$RUNS/det_full/metrics.jsonl")
    cpu_val=$(sed -nE 's/^loss ([0-9.]+) .*/\1/p' "$OUT/val_cpu.log")
    {
        diff <(timeless "$RUNS/det_full") <(timeless "$RUNS/det_resumed") &&
            echo "GPU run stopped at 40, resumed to 60: metrics (but timings) identical to the uninterrupted run's," \
                 "$(timeless "$RUNS/det_full" | wc -l) lines" &&
            cmp "$RUNS/det_full/model/model.safetensors" "$RUNS/det_resumed/model/model.safetensors" &&
            echo "GPU run stopped at 40, resumed to 60: final weights identical (cmp model.safetensors)" &&
            python3 -c 'import sys; g, c = float(sys.argv[1]), float(sys.argv[2]); d = abs(g - c) / c
print(f"validation at step 60: GPU {g:.4f}, CPU (tnllm eval) {c:.4f}, relative difference {d:.5f} (<= 0.01)")
sys.exit(d > 0.01)' "$gpu_val" "$cpu_val"
    } 2>&1 | tee "$OUT/determinism.log" || status=1
fi
rm -rf "$RUNS"
echo "== summary ($PARTS)"
want checks && grep -E "FAIL|worst|passed," "$OUT/check_model.log" "$OUT/check_baseline.log"
want curves && cat "$OUT/compare.log"
want switched && { echo "== ablation switches, GPU vs CPU"; cat "$OUT/compare_switched.log"; }
want determinism && { echo "== determinism and validation on the GPU"; cat "$OUT/determinism.log"; }
exit $status
