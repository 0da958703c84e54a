#!/bin/bash
# device_experiments.sh [smoke|full]: the paper's quality tables (3, 5-10 and
# the seed noise) at GPU scale on the device machine (two GPUs), in one call:
# scripts/paper_tables.py --scale gpu --device cuda --train-only trains every
# run, several at once, CUDA_VISIBLE_DEVICES spreading them over the GPUs
# (the device machine has no gnuplot: the tables and plots are written
# afterwards, here, by the same command without --train-only, from the runs'
# metrics). Needs ./tnllm (make), data/large-corpus.jsonl
# (data/make_large_corpus.py) and scripts/{paper_tables,paper_efficiency,
# svgplot}.py beside it; the shared libraries as scripts/device_env.sh finds them.
#   smoke: Table 3 with one rate a row for 200 steps, one run a GPU, then two
#          a GPU, then five small-model runs three a GPU: start-up, tokens/s
#          and the gain of sharing a GPU, to size the full call.
#   full:  every table, Table 3 with its learning-rate sweep (JOBS runs at
#          once, default 6), stopped after LIMIT seconds (default 205) so
#          what finished still comes back.
# $OUT gets log.txt (everything printed) and runs.tar.gz (each run's
# metrics.jsonl and log, under runs/).
set -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device_experiments}
. scripts/device_env.sh
mode=${1:-full}
tables="python3 scripts/paper_tables.py --scale gpu --device cuda --gpus 2 --threads 4 --train-only"
exec > >(tee "$OUT/log.txt") 2>&1
status=0
case $mode in
smoke)
    for phase in "single 2 3" "double 4 3" "triple 6 7,9,noise"; do
        read -r name jobs which <<<"$phase"
        echo "== $name: tables $which, $jobs runs at once"
        SECONDS=0
        $tables --tables "$which" --lr-sweep small=2e-3 --lr-sweep large=1e-3 --steps 200 --eval-every 100 \
            --jobs "$jobs" --work "runs/smoke-$name" || status=1
        echo "== $name: $SECONDS s"
    done
    ;;
full)
    SECONDS=0
    timeout "${LIMIT:-205}" $tables --tables 3,5,6,7,8,9,10,noise --sweep-tables 3 \
        --lr-sweep small=1e-3,2e-3,4e-3 --lr-sweep large=5e-4,1e-3,2e-3 --jobs "${JOBS:-6}" || status=1
    echo "== full: $SECONDS s"
    ;;
*)
    echo "usage: $0 [smoke|full]" >&2
    exit 2
    ;;
esac
echo "== runs: final step, validation loss, training tokens/s, training seconds"
python3 - <<'EOF'
import glob, json
for path in sorted(glob.glob("runs/*/*/metrics.jsonl")):
    step = val = rate = elapsed = None
    for line in open(path):
        record = json.loads(line)
        if "tokens_per_s" in record:
            step, rate, elapsed = record["step"], record["tokens_per_s"], record["elapsed_s"]
        if "val_loss" in record:
            val = record["val_loss"]
    print(f"{path[:-len('/metrics.jsonl')]:60s} {step} {val} {rate} {elapsed}")
EOF
tar -czf "$OUT/runs.tar.gz" runs/*/*/metrics.jsonl runs/*/*.log
exit $status
