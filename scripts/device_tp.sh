#!/bin/bash
# device_tp.sh: tensor parallelism on the GPUs (issue 9, the paper's §3.2.2), in one call on a machine
# of 2 GPUs or more (TP, default 2, GPUs per tensor group):
#  1. build/cuda/check_tp: the CUDA model split over TP GPUs (its all-reduces NCCL's, Eq. 11-18)
#     against the whole model on each GPU: loss, logits, every gradient, the replicated gradients
#     bit-identical on every rank, the global norm of the split and replicated tensors, recompute
#     (tests/cuda/check_tp.c states the bounds). check_dist (device_dist.sh) checks the groups'
#     NCCL communicators (tn_comm_split).
#  2. the 15M model (SIZE) on one GPU and with --tp TP on TP GPUs, for 3 and STEPS (default 20) steps:
#     launched as torchrun would (--dist-init file:PATH) and, for STEPS, under mpirun too; with
#     4 GPUs or more also --tp TP --dp 2 --zero 1 (the data groups' ZeRO-1 over the parts); and the
#     2-GPU data parallel run (--zero 0) that sets the STEPS tolerance.
#  3. resume: --tp TP stopped at STEPS/2, continued on one GPU and on the CPU; one GPU stopped at
#     STEPS/2, continued with --tp TP.
#  4. throughput and memory per GPU on a larger model (BIG, default 1B; 20 steps at 8 x 1024 tokens)
#     on one GPU and with --tp TP.
# Checks, each run against the one-GPU run of its length:
#  - step 1 (the same initial weights and batch; nothing has been updated yet): the loss within 1e-4
#    relative (scripts/compare_losses.py's first-step check). The parts add each product's halves
#    in float32 in another order than the whole GEMM, which moves the loss by about 1e-7 and flips
#    the bf16 rounding of an activation here and there (2^-9 of it); a missing, doubled or misplaced
#    all-reduce, or a part reading another's heads, changes it by a percent or more.
#  - after 3 steps: the final weights within 5e-2 of the update (scripts/compare_weights.py:
#    |W - W_1gpu| / |W_1gpu - W_init|). AdamW's first steps move each weight by about lr sign(g),
#    so the runs differ by 2 lr where the sign of a gradient element flips: where |g| is below its
#    rounding noise. ZeRO's reduction order (float32 noise, ~1e-7 of g) measured 1.4e-3 on this model
#    (device_dist.sh); the parts' bf16 flips make the gradients' noise about 100 times that, and the
#    share of flipped signs with it: about 2 sqrt(100 x 5e-7) = 1.4e-2 expected. A fault of the
#    split is O(1). (Not yet measured on a GPU: the first run sets the figure to state here.)
#  - after STEPS steps: the loss curves (compare_losses.py: the mean of 20 steps within 2%) and the
#    weights within three times the difference of the 2-GPU data-parallel run measured in the same
#    call: by then the bf16 rounding has amplified any change of summation order chaotically (11.5%
#    of the update for ZeRO-0 after 40 steps, device_dist.sh), and the split's forward changes a
#    little more than ZeRO's gradient sums do.
#  - --tp 2 under mpirun ends bit-identical to the same run launched by file (the same NCCL
#    collectives on the same GPUs in the same order, and the host's sums of the gradient norm's
#    squares, by MPI or NCCL, add two terms: one rounding either way; with TP > 2 their order may
#    differ, and the mpirun run is held to the STEPS bounds alone), and the resumed runs as the
#    STEPS runs (the one resumed on the CPU by its losses only: float32 without bf16).
# Prints the per-GPU memory line of each run, the throughput (scripts/steady_rate.py: tokens/s from
# step 3 on) and the scaling efficiency tok/s(--tp TP) / (TP x tok/s(one GPU)): TP GPUs share one
# copy of the model and each micro-batch, so ideally a step takes 1/TP of the one GPU's time.
# Uses the binaries built here by `make` (its report line says ✓ NCCL), carried with their shared
# libraries in LIB_DIR if set (scripts/carry_libs.sh). Logs go to $OUT: device.txt, check_tp.log,
# tp.log (every run, in order), summary.log. Exit status: non-zero if a check failed.
set -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device_tp}
. scripts/device_env.sh
GPUS=$(nvidia-smi -L | wc -l)
TP=${TP:-2}
STEPS=${STEPS:-20}
HALF=$((STEPS / 2))
LIMIT=${LIMIT:-120} # seconds a multi-GPU run may take
LOG=$OUT/tp.log
[ "$GPUS" -ge "$TP" ] && [ "$TP" -ge 2 ] || { echo "--tp $TP needs $TP GPUs; this machine has $GPUS"; exit 1; }
build/cuda/check_tp --gpus "$TP" --seed "${SEED:-$RANDOM}" 2>&1 | tee "$OUT/check_tp.log"
status=$?
RUNS=$(mktemp -d)
SIZE=${SIZE:-15M}
# 4 micro-batches of 4 x 256 tokens per step, a constant rate after the warmup (so that a run
# stopped at STEPS/2 and resumed is the same run as one that was not)
run="--size $SIZE --data data/corpus.jsonl --ctx 256 --micro-batch 4 --batch-tokens 4096 --warmup 10 --lr 2e-3
     --min-lr-ratio 1 --eval-every 0 --eval-windows 16 --log-every 10 --device cuda --seed 1234"
. scripts/device_launch.sh # one, launch, mpi, file_init
export RANKS=$TP
# 3 steps: before the bf16 rounding has amplified the split's differences
one 1gpu_early --steps 3
./tnllm init --config "$RUNS/1gpu_early/model/config.json" --seed 1234 -o "$RUNS/init" > /dev/null || status=1
launch tp_early "$(file_init)" --steps 3 --tp "$TP"
# STEPS steps
one 1gpu --steps "$STEPS"
launch tp "$(file_init)" --steps "$STEPS" --tp "$TP"
mpi tp_mpi --steps "$STEPS" --tp "$TP"
RANKS=2 launch dp2 "$(file_init)" --steps "$STEPS" --zero 0
compared="tp tp_mpi"
if [ "$GPUS" -ge $((2 * TP)) ]; then
    RANKS=$((2 * TP)) launch tp_dp2_zero1 "$(file_init)" --steps "$STEPS" --tp "$TP" --dp 2 --zero 1
    compared="$compared tp_dp2_zero1"
fi
# resume: a --tp checkpoint (the whole model's files) on one GPU and on the CPU, and the reverse
launch tp_to_1gpu "$(file_init)" --steps "$HALF" --tp "$TP"
cp -r "$RUNS/tp_to_1gpu" "$RUNS/tp_to_cpu"
one tp_to_1gpu --steps "$STEPS" --resume
echo "== tp_to_cpu: the CPU, --resume" | tee -a "$LOG"
./tnllm train ${run/--device cuda/--device cpu} -o "$RUNS/tp_to_cpu" --steps "$STEPS" --resume 2>&1 |
    tee -a "$LOG" "$RUNS/tp_to_cpu.txt" > /dev/null || status=1
one 1gpu_to_tp --steps "$HALF"
launch 1gpu_to_tp "$(file_init)" --steps "$STEPS" --tp "$TP" --resume
compared="$compared tp_to_1gpu 1gpu_to_tp"
# throughput and memory on a larger model
big="--size ${BIG:-1B} --steps 20 --log-every 20 --micro-batch 8 --batch-tokens 8192 --ctx 1024"
one 1gpu_big $big
LIMIT=${BIG_LIMIT:-300} launch tp_big "$(file_init)" $big --tp "$TP" # the host's 1B initialisation, the checkpoints
relative() { sed -n 's/^weights: |A - B| \/ |B - init| = \([0-9.e+-]*\) .*/\1/p'; }
{
    echo "== step 1 and after 3 steps, --tp $TP against one GPU: the first loss within 1e-4, the weights within 5e-2"
    python3 scripts/compare_losses.py "$RUNS/tp_early" "$RUNS/1gpu_early" 1e-4 || status=1
    python3 scripts/compare_weights.py "$RUNS/tp_early/model" "$RUNS/1gpu_early/model" "$RUNS/init" 5e-2 || status=1
    echo "== after $STEPS steps against one GPU: the losses; the weights within 3 x the 2-GPU data-parallel difference"
    reference=$(python3 scripts/compare_weights.py "$RUNS/dp2/model" "$RUNS/1gpu/model" "$RUNS/init" 1 | relative)
    tolerance=$(python3 -c "print(3 * float('${reference:-0}'))")
    echo "dp2: weights differ from one GPU's by ${reference:-?} of the update: tolerance $tolerance"
    for name in $compared; do
        echo "-- $name"
        python3 scripts/compare_losses.py "$RUNS/$name" "$RUNS/1gpu" 1e-4 || status=1
        python3 scripts/compare_weights.py "$RUNS/$name/model" "$RUNS/1gpu/model" "$RUNS/init" "$tolerance" ||
            status=1
    done
    echo "-- tp_to_cpu (the CPU's float32 from step $HALF on: losses only)"
    python3 scripts/compare_losses.py "$RUNS/tp_to_cpu" "$RUNS/1gpu" || status=1
    if [ "$TP" = 2 ]; then
        echo "== --tp 2 under mpirun against the launch by file: bit-identical"
        cmp "$RUNS/tp_mpi/model/model.safetensors" "$RUNS/tp/model/model.safetensors" &&
            echo "tp_mpi: final weights identical to tp's (cmp model.safetensors)" || status=1
    fi
    echo "== memory per GPU"
    for name in 1gpu tp 1gpu_big tp_big; do
        echo "$name: $(grep -h "memory per GPU" "$RUNS/$name.txt" | head -n 1)"
    done
    echo "== throughput (tokens/s of the whole batch from step 3 on)"
    for pair in "1gpu tp" "1gpu_big tp_big"; do
        set -- $pair
        single=$(python3 scripts/steady_rate.py "$RUNS/$1") many=$(python3 scripts/steady_rate.py "$RUNS/$2")
        [ -n "$single" ] && [ -n "$many" ] && echo "$2: $many tok/s on $TP GPUs (--tp $TP), $single on one:" \
            "scaling efficiency $(python3 -c "print(f'{$many / ($TP * $single):.2f}')")"
    done
    echo "== check_tp"
    grep -E "FAIL|passed,|parts:|skipped" "$OUT/check_tp.log"
} > "$OUT/summary.log" 2>&1
grep -h "error" "$LOG"
cat "$OUT/summary.log"
rm -rf "$RUNS"
exit $status
