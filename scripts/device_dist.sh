#!/bin/bash
# device_dist.sh: data parallel on the GPUs of the device machine (issue 9), in one call:
#  1. build/cuda/check_dist: NCCL's all-reduce, reduce-scatter and all-gather on every GPU,
#     one rank per GPU joined through a file, against float64 sums;
#  2. the same 60-step run on one GPU and on N GPUs (N = $GPUS, default every GPU, at least 2):
#     launched without MPI as torchrun would (RANK, WORLD_SIZE, LOCAL_RANK) with
#     --dist-init file:PATH, again with --dist-init tcp://127.0.0.1:PORT, and under
#     mpirun -np N (the id by MPI_Bcast); each multi-GPU curve is compared with the
#     one-GPU curve (scripts/compare_losses.py: the windowed loss within 2%), and the
#     throughput (the run's tokens/s over the whole batch) gives the scaling efficiency
#     tok/s(N) / (N x tok/s(1)). SIZE (default 15M) picks the model.
# Uses the binaries built here by `make` (with NCCL: its report line says ✓ NCCL), carried
# with their shared libraries in LIB_DIR if set (scripts/carry_libs.sh); NCCL comes from the
# machine's CUDA toolkit. Logs go to $OUT: device.txt, check_dist.log, train_1gpu.log,
# train_file.log, train_tcp.log, train_mpi.log, compare_*.log, scaling.log. Exit status: non-zero if a
# check failed.
set -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device_dist}
. scripts/device_env.sh
GPUS=${GPUS:-$(nvidia-smi -L | wc -l)}
build/cuda/check_dist --gpus "$GPUS" --seed "${SEED:-$RANDOM}" 2>&1 | tee "$OUT/check_dist.log"
status=$?
[ "$GPUS" -ge 2 ] || { echo "one GPU: no multi-GPU run"; exit $status; }
RUNS=$(mktemp -d)
# batch-tokens: 8 micro-batches per step, shared by up to 8 ranks
run="--size ${SIZE:-15M} --data data/corpus.jsonl --ctx 256 --micro-batch 4 --batch-tokens 8192 --warmup 10 --lr 2e-3
     --steps 60 --eval-every 0 --eval-windows 16 --log-every 10 --device cuda"
./tnllm train $run -o "$RUNS/1gpu" 2>&1 | tee "$OUT/train_1gpu.log" || status=1
# ranks started without MPI, as torchrun or srun would; rank 0's output is kept
launch() { # NAME DIST_INIT
    local pids=()
    for ((rank = GPUS - 1; rank >= 0; rank--)); do
        RANK=$rank WORLD_SIZE=$GPUS LOCAL_RANK=$rank ./tnllm train $run --dist-init "$2" -o "$RUNS/$1" \
            > "$OUT/train_$1.rank$rank.log" 2>&1 &
        pids+=($!)
    done
    local failed=0
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    cat "$OUT/train_$1.rank0.log" > "$OUT/train_$1.log"
    return $failed
}
launch file "file:$RUNS/nccl.id" || status=1
launch tcp "tcp://127.0.0.1:$((29500 + RANDOM % 1000))" || status=1
# containers often forbid the cross-process reads of OpenMPI's default shared-memory copy
launchers="file tcp"
if command -v mpirun >/dev/null; then
    OMPI_MCA_btl_vader_single_copy_mechanism=none mpirun --allow-run-as-root --bind-to none -np "$GPUS" ./tnllm train $run -o "$RUNS/mpi" 2>&1 | tee "$OUT/train_mpi.log" || status=1
    launchers="$launchers mpi"
else
    echo "no mpirun on this machine: the MPI launch is not run" | tee "$OUT/train_mpi.log"
fi
for name in $launchers; do
    echo "== $GPUS GPUs ($name) against one GPU" | tee "$OUT/compare_$name.log"
    python3 scripts/compare_losses.py "$RUNS/$name" "$RUNS/1gpu" 2>&1 | tee -a "$OUT/compare_$name.log" || status=1
done
rate() { grep -o '[0-9]* tok/s' "$1" | tail -n 1 | cut -d' ' -f1; }
one=$(rate "$OUT/train_1gpu.log")
for name in $launchers; do
    many=$(rate "$OUT/train_$name.log")
    [ -n "$one" ] && [ -n "$many" ] && python3 -c "print(f'$name: {$many} tok/s on $GPUS GPUs, {$one} on one: scaling efficiency {$many / ($GPUS * $one):.2f}')" |
        tee -a "$OUT/scaling.log"
done
rm -rf "$RUNS"
echo "== summary"
grep -E "FAIL|passed," "$OUT/check_dist.log"
grep -h "memory per rank\|done:" "$OUT"/train_*.log
cat "$OUT"/compare_*.log "$OUT/scaling.log" 2>/dev/null
exit $status
