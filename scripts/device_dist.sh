#!/bin/bash
# device_dist.sh: data parallel and ZeRO on the GPUs of the device machine (issue 9), in one call:
#  1. build/cuda/check_dist: NCCL's all-reduce, reduce-scatter (whole and of a part) and
#     all-gather on every GPU, one rank per GPU joined through a file, against float64 sums;
#  2. the same STEPS-step run (default 40, a 15M model: SIZE) on one GPU and on N GPUs (N = $GPUS,
#     default every GPU, at least 2), ZeRO-0 launched as torchrun would (RANK, WORLD_SIZE,
#     LOCAL_RANK) with --dist-init tcp://127.0.0.1:PORT, ZeRO-1 under mpirun -np N (the id by
#     MPI_Bcast; by --dist-init file:PATH where no mpirun), ZeRO-2 and ZeRO-3 with
#     --dist-init file:PATH;
#  3. resume with another GPU count: ZeRO-3 on N GPUs for STEPS/2 steps, continued to STEPS on one
#     GPU and (ZeRO-3) on N; one GPU for STEPS/2 steps, continued with ZeRO-1 on N GPUs.
# Every run ends with the same step count and is compared with the one-GPU run: the loss curves
# (scripts/compare_losses.py: the mean of 20 steps within 2%) and the final weights
# (scripts/compare_weights.py: |W - W_1gpu| / |W_1gpu - W_init| <= 5%, the difference of the
# training updates relative to the update). Why 5%: the layouts compute the same sums in another
# order (the gradients added over ranks and micro-batches, the norm's squares by range), which
# perturbs a step at float32 rounding (2^-24); the bf16 copy of the weights (rounding 2^-9) and
# the bf16 activations amplify such perturbations over the steps: measured on the 15M model after
# 40 steps of 8 micro-batches, the ZeRO-0 layout (the one issue 8 accepted, printed first) differs
# from one GPU by 3.1%, ZeRO-1 and 2 by 3.2% and 2.6%. A fault of sharding (a part left out of the reduction or
# added twice, a range updated with another's moments, a stale gather) changes the update of a
# whole range, a sizeable fraction of the model, by O(1): tens of percent of |W - W_init|.
# Prints tokens/s, the per-GPU memory line of each layout and the scaling efficiency
# tok/s(N) / (N x tok/s(1)).
# Uses the binaries built here by `make` (with NCCL: its report line says ✓ NCCL), carried with
# their shared libraries in LIB_DIR if set (scripts/carry_libs.sh); NCCL comes from the machine's
# CUDA toolkit. Logs go to $OUT: device.txt, check_dist.log, dist.log (every run, in order),
# summary.log.
# Exit status: non-zero if a check failed.
set -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device_dist}
. scripts/device_env.sh
GPUS=${GPUS:-$(nvidia-smi -L | wc -l)}
STEPS=${STEPS:-40}
HALF=$((STEPS / 2))
LIMIT=${LIMIT:-120} # seconds a multi-GPU run may take: a collective that hangs ends it
LOG=$OUT/dist.log
build/cuda/check_dist --gpus "$GPUS" --seed "${SEED:-$RANDOM}" 2>&1 | tee "$OUT/check_dist.log"
status=$?
[ "$GPUS" -ge 2 ] || { echo "one GPU: no multi-GPU run"; exit $status; }
RUNS=$(mktemp -d)
SIZE=${SIZE:-15M}
# 4 N - 1 micro-batches of 4 x 256 tokens per step: the last rank has none in the last pass of a
# step and runs an idle one (ZeRO-2/3: a zero gradient, the same collectives); a constant rate
# after the warmup, so that a run stopped at STEPS/2 and resumed is the same run as one that was not
run="--size $SIZE --data data/corpus.jsonl --ctx 256 --micro-batch 4 --batch-tokens $(((4 * GPUS - 1) * 1024))
     --warmup 10 --lr 2e-3 --min-lr-ratio 1 --eval-every 0 --eval-windows 16 --log-every 10 --device cuda --seed 1234"
one() { # NAME ARGS...: one GPU
    local name=$1; shift
    echo "== $name: one GPU $*" | tee -a "$LOG"
    ./tnllm train $run -o "$RUNS/$name" "$@" 2>&1 | tee -a "$LOG" "$RUNS/$name.txt" > /dev/null || status=1
}
launch() { # NAME DIST_INIT ARGS...: N ranks started without MPI, as torchrun or srun would
    local name=$1 init=$2 pids=() failed=0; shift 2
    echo "== $name: $GPUS GPUs, --dist-init $init $*" | tee -a "$LOG"
    for ((rank = GPUS - 1; rank >= 0; rank--)); do
        RANK=$rank WORLD_SIZE=$GPUS LOCAL_RANK=$rank timeout "$LIMIT" ./tnllm train $run --dist-init "$init" -o "$RUNS/$name" "$@" \
            > "$RUNS/$name.rank$rank.log" 2>&1 &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    tee -a "$LOG" "$RUNS/$name.txt" < "$RUNS/$name.rank0.log" > /dev/null
    [ $failed = 0 ] || { status=1; cat "$RUNS/$name".rank*.log | grep -i error | tee -a "$LOG"; }
}
file_init() { rm -f "$RUNS/nccl.id"; echo "file:$RUNS/nccl.id"; }
# containers often forbid the cross-process reads of OpenMPI's default shared-memory copy
if command -v mpirun > /dev/null; then
    mpi() { # NAME ARGS...
        local name=$1; shift
        echo "== $name: $GPUS GPUs under mpirun $*" | tee -a "$LOG"
        OMPI_MCA_btl_vader_single_copy_mechanism=none timeout "$LIMIT" mpirun --allow-run-as-root --bind-to none -np "$GPUS" \
            ./tnllm train $run -o "$RUNS/$name" "$@" 2>&1 | tee -a "$LOG" "$RUNS/$name.txt" > /dev/null || status=1
    }
else
    echo "no mpirun on this machine: ZeRO-1 is launched by file instead" | tee -a "$LOG"
    mpi() { local name=$1; shift; launch "$name" "$(file_init)" "$@"; }
fi
one 1gpu --steps "$STEPS"
# the runs' initial weights (the same seed and configuration), for compare_weights.py
./tnllm init --config "$RUNS/1gpu/model/config.json" --seed 1234 -o "$RUNS/init" > /dev/null || status=1
launch zero0 "tcp://127.0.0.1:$((29500 + RANDOM % 1000))" --steps "$STEPS" --zero 0
mpi zero1 --steps "$STEPS" --zero 1
launch zero2 "$(file_init)" --steps "$STEPS" --zero 2
launch zero3 "$(file_init)" --steps "$HALF" --zero 3
cp -r "$RUNS/zero3" "$RUNS/zero3_to_1gpu"
launch zero3 "$(file_init)" --steps "$STEPS" --zero 3 --resume
one zero3_to_1gpu --steps "$STEPS" --resume
one 1gpu_to_zero1 --steps "$HALF"
launch 1gpu_to_zero1 "$(file_init)" --steps "$STEPS" --zero 1 --resume
{
    echo "== each layout against one GPU ($STEPS steps)"
    for name in zero0 zero1 zero2 zero3 zero3_to_1gpu 1gpu_to_zero1; do
        echo "-- $name"
        python3 scripts/compare_losses.py "$RUNS/$name" "$RUNS/1gpu" || status=1
        python3 scripts/compare_weights.py "$RUNS/$name/model" "$RUNS/1gpu/model" "$RUNS/init" 0.05 || status=1
    done
    echo "== memory per GPU"
    for name in 1gpu zero0 zero1 zero2 zero3; do echo "$name: $(grep -h "memory per GPU" "$RUNS/$name.txt" | head -n 1)"; done
    echo "== throughput (whole batch tokens/s, last logged step)"
    rate() { grep -o '[0-9]* tok/s' "$RUNS/$1.txt" | tail -n 1 | cut -d' ' -f1; }
    single=$(rate 1gpu)
    for name in zero0 zero1 zero2 zero3; do
        many=$(rate $name)
        [ -n "$single" ] && [ -n "$many" ] && python3 -c "print(f'$name: {$many} tok/s on $GPUS GPUs, {$single} on one: scaling efficiency {$many / ($GPUS * $single):.2f}')"
    done
    echo "== check_dist"
    grep -E "FAIL|passed," "$OUT/check_dist.log"
} > "$OUT/summary.log" 2>&1
grep -h "error" "$LOG"
cat "$OUT/summary.log"
rm -rf "$RUNS"
exit $status
