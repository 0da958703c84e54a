#!/bin/bash
# device_profile.sh SPEC...: where one training step's GPU time goes. For each
# bench_train SPEC (SIZE:BATCH:T[:RECOMPUTE[:ARCH]]) Nsight Compute times every
# kernel of one step (bench_train brackets its last timed step with
# cudaProfilerStart/Stop) and scripts/kernel_times.py prints the kernels
# grouped by name: count, total ms, share of the step. Run on the device
# machine (ncu with --clock-control none, as its METHOD.md asks).
set -eo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device_profile}
mkdir -p "$OUT"
. scripts/device_env.sh
NCU=${NCU:-$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -n 1)}
[ -x "$NCU" ] || { echo "device_profile.sh: ncu not found" >&2; exit 1; }
for spec in "${@:-385M:8:2048}"; do
    csv="$OUT/profile_${spec//:/_}.csv" # ncu writes its CSV report to --log-file
    "$NCU" --profile-from-start off --clock-control none --metrics gpu__time_duration.sum --csv \
        --log-file "$csv" build/cuda/bench_train "$spec"
    echo "== $spec"
    python3 scripts/kernel_times.py "$csv"
done
