#!/bin/bash
# device_all.sh: every GPU check and the main benchmarks in ONE short call on
# the device machine (about 4 minutes on an H200; the steps' limits add up
# to more than a call's 10 minutes), for sessions whose device time is
# scarce. Each step has a time limit and its own log in $OUT; a step that
# fails or runs out of time does not stop the others, and DEADLINE=S
# (default 560) ends the whole script after about S seconds (steps not
# started by then are listed as skipped), so the summary is printed within
# one call. With two or
# more GPUs it also runs scripts/device_dist.sh (NCCL data parallel against
# one GPU) and check_tp (tensor parallelism's split model on 2 GPUs against
# the whole).
# Checks first (each against the CPU path or a float64 reference), then the
# benchmarks; a summary table last. The longer scripts (device_train.sh,
# device_infer.sh, device_attention.sh, device_dist.sh) do more of each.
# Uses the binaries built here by `make` (tnllm, build/cuda/*), carried with
# the shared libraries in LIB_DIR (scripts/carry_libs.sh).
# Exit status: non-zero if any check failed.
set -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device_all}
. scripts/device_env.sh
SEED=${SEED:-$RANDOM}
DEADLINE=${DEADLINE:-560}
status=0
summary=()

# step NAME LIMIT_S COMMAND...: runs COMMAND with its output in $OUT/NAME.log
# and records its exit status, time and last "passed," or table line.
step() {
    local name=$1 limit=$2; shift 2
    [ -x "$1" ] || { summary+=("$(printf '| %-16s | %-7s | %6s | %s |' "$name" missing - "$1 not built")"); return; }
    # DEADLINE (seconds after the start) caps every step's limit
    local left=$((DEADLINE - SECONDS))
    [ $left -ge 5 ] || { summary+=("$(printf '| %-16s | %-7s | %6s | %s |' "$name" skipped - "DEADLINE reached")"); return; }
    [ $left -ge "$limit" ] || limit=$left
    echo "== $name: $*"
    local start=$SECONDS rc
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    tail -n 40 "$OUT/$name.log"
    local verdict=ok
    [ $rc -eq 124 ] && verdict=timeout
    [ $rc -ne 0 ] && [ $rc -ne 124 ] && verdict="rc $rc"
    [ "$verdict" = ok ] || status=1
    local key
    key=$(grep -E "passed,|TOTAL" "$OUT/$name.log" | tail -n 1)
    summary+=("$(printf '| %-16s | %-7s | %6d | %s |' "$name" "$verdict" $((SECONDS - start)) "${key:0:90}")")
}

GPUS=$(nvidia-smi -L | wc -l)
step check_model      60 build/cuda/check_model "$SEED"
step check_infer      40 build/cuda/check_infer "$SEED"
step check_baseline   30 build/cuda/check_baseline "$SEED"
if [ "$GPUS" -ge 2 ]; then # check_dist on every GPU, then 1 GPU against N (its logs: check_dist.log, train_*.log)
    step device_dist 120 scripts/device_dist.sh
    step check_tp     30 build/cuda/check_tp --gpus 2 --seed "$SEED" # tensor parallelism's split model
else
    step check_dist   20 build/cuda/check_dist --gpus 1 --seed "$SEED"
fi
step check_attention  60 build/cuda/check_attention "$SEED"
step bench_train     150 build/cuda/bench_train 385M:8:2048 1B:4:2048 385M:8:2048:none:transformer \
    1B:4:2048:none:transformer 385M:1:max:layers 1B:1:max:layers
# issue 8's baselines in the same call: the official code's way (PyTorch, AMP) for both architectures
step torch_train      90 /usr/bin/env PYTHONUNBUFFERED=1 python3 bench/train_torch.py
# issue 8's 200-step curve: the GPU run against the CPU run's committed metrics
step curve            40 /usr/bin/env PARTS=curves CPU_REFERENCE=bench/reference/cpu-15M-200 RESUME_STEPS=10 OUT="$OUT/curve" \
    scripts/device_train.sh
step bench_decode     30 build/cuda/bench_decode --steps 50
step bench_attention  40 build/cuda/bench_attention "$OUT/attention.tsv"
# issue 7's baselines in the same call: PyTorch naive (the paper's), chunked and SDPA beside the kernels
step torch_attention  60 /usr/bin/env PYTHONUNBUFFERED=1 python3 bench/attention_torch.py "$OUT/attention.tsv"

echo "== summary (seed $SEED; logs in $OUT)"
printf '| %-16s | %-7s | %6s | %s |\n' step result s "last result line"
printf '%s\n' "${summary[@]}"
exit $status
