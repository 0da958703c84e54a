#!/bin/bash
# device_tp_table.sh: the paper's Table 11 (model parallelism of TransNormerLLM-7B on one node of
# 8 A100 80G: tokens/s and allocated memory per GPU at model parallel sizes 1, 2, 4, 8; batch 2 and
# context 2048, FSDP) measured with tnllm on the device machine's GPUs (an x4 or x8 machine).
# For each TP of TPS (default: 1 2 4 8, those that divide the GPU count), one run of
#   tnllm train --size 7B --vocab 64000 --device cuda --tp TP --dp GPUS/TP --zero 1
# launched as torchrun would (one rank per GPU, --dist-init file:PATH), micro-batches of 2 x 2048
# tokens, one per data group and step (the paper's batch 2 x 2048 per model copy), stopped by SIGKILL
# once step STOP (default 12) is logged: no 7B checkpoint is written. Each run is limited to LIMIT
# seconds (default 400). Expect about 40 s a run on H200s (most of it the host's initialisation,
# then 0.2-0.5 s a step); one call can run all of TPS; on a machine of 4 GPUs,
# TPS="4 8" BASE_RATE=R BASE_MIB=M after a first call of "1 2" gives the rows against it (the TP = 1
# tokens/s and accounted MiB per GPU, the base of the efficiency and the memory saved).
# Prints, next to the paper's TransNormerLLM-7B rows: tokens/s of the whole job
# (scripts/steady_rate.py: from step 3 to the last logged step), the memory per GPU the run
# accounts for (its "memory per GPU" line: parameters, bf16 copy, gradients, AdamW shard,
# activation arena) and the peak nvidia-smi saw on any GPU, the memory saved against TP = 1, and the
# scaling efficiency tok/s(TP) / tok/s(TP = 1) on the same GPUs (the paper's MP8: 24280.0 / 32048.6 =
# 0.76).
# Differences from the paper's set-up: ZeRO-1 (AdamW's moments sharded over the data group) where
# it used FSDP (tnllm on GPUs combines --tp with ZeRO-0 and 1 only), so TP = 1 holds the whole fp32
# parameters, their bf16 copy and gradients on every GPU (about 70 GB of 7B's state), which FSDP
# shards; H200s (141 GB) rather than A100s; the byte-level corpus data/corpus.jsonl with the model's
# vocabulary of 64000 (the embedding and head of the paper's size), at lr 3e-4 (1e-3 diverged to a
# loss of 22 within six steps; the table measures speed and memory, not quality).
# Measured on 2 x H200 (TPS="1 2", 82 s): results/gpu/table11_13.md.
# Logs in $OUT: device.txt, table.log (every run's rank 0 output), tp_table.md.
set -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device_tp_table}
. scripts/device_env.sh
GPUS=$(nvidia-smi -L | wc -l)
TPS=${TPS:-1 2 4 8}
STOP=${STOP:-12}
LIMIT=${LIMIT:-400}
LOG=$OUT/table.log
RUNS=$(mktemp -d)
status=0
run="--size 7B --vocab 64000 --data data/corpus.jsonl --ctx 2048 --micro-batch 2 --steps 1000 --warmup 10 --lr 3e-4
     --eval-every 0 --save-every 0 --log-every 1 --device cuda --seed 1234"
# stops every rank of a run with SIGKILL once its metrics log step STOP, LIMIT seconds have passed
# or a rank has ended on its own (an error: the others would wait for it in a collective)
stop_at() { # NAME PIDS...
    local name=$1 start=$SECONDS; shift
    until grep -q "\"step\": $STOP," "$RUNS/$name/metrics.jsonl" 2> /dev/null || [ $((SECONDS - start)) -ge "$LIMIT" ]; do
        # one pid at a time: `kill -0 A B` succeeds while any of them lives
        for pid in "$@"; do kill -0 "$pid" 2> /dev/null || break 2; done
        sleep 1
    done
    kill -9 "$@" 2> /dev/null
}
declare -A rate memory peak
rate[1]=${BASE_RATE:-} memory[1]=${BASE_MIB:-}
for tp in $TPS; do
    [ "$tp" -le "$GPUS" ] && [ $((GPUS % tp)) -eq 0 ] || { echo "--tp $tp: skipped ($GPUS GPUs)" | tee -a "$LOG"; continue; }
    dp=$((GPUS / tp)) name=tp$tp pids=()
    rm -f "$RUNS/nccl.id"
    echo "== $name: $GPUS GPUs, --tp $tp --dp $dp --zero 1, batch $dp x 2 x 2048 tokens" | tee -a "$LOG"
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 > "$RUNS/$name.smi" &
    smi=$!
    for ((rank = GPUS - 1; rank >= 0; rank--)); do
        RANK=$rank WORLD_SIZE=$GPUS LOCAL_RANK=$rank ./tnllm train $run --tp "$tp" --dp "$dp" --zero 1 \
            --batch-tokens $((dp * 4096)) --dist-init "file:$RUNS/nccl.id" -o "$RUNS/$name" \
            > "$RUNS/$name.rank$rank.log" 2>&1 &
        pids+=($!)
    done
    stop_at "$name" "${pids[@]}"
    for pid in "${pids[@]}"; do wait "$pid" 2> /dev/null; done
    kill "$smi"
    wait "$smi" 2> /dev/null
    cat "$RUNS/$name.rank0.log" >> "$LOG"
    grep -h -i "error" "$RUNS/$name".rank*.log | tee -a "$LOG"
    rate[$tp]=$(python3 scripts/steady_rate.py "$RUNS/$name" 3) || status=1
    memory[$tp]=$(sed -n 's/^memory per GPU.* total \([0-9.]*\) MiB$/\1/p' "$RUNS/$name.rank0.log" | head -n 1)
    peak[$tp]=$(sort -n "$RUNS/$name.smi" | tail -n 1)
    echo "$name: ${rate[$tp]:-?} tok/s, ${memory[$tp]:-?} MiB per GPU accounted, ${peak[$tp]:-?} MiB peak" | tee -a "$LOG"
    rm -rf "${RUNS:?}/$name"
done
{
    echo "| Model | TP | Tokens/s | Memory/GPU (accounted) | Peak used/GPU (nvidia-smi) | Memory saved | Scaling efficiency |"
    echo "|---|---|---|---|---|---|---|"
    paper=("" "1 32048.6 64.0 -" "2 29750.4 41.0 35.9%" "4 27885.2 36.3 43.3%" "8 24280.0 24.1 62.3%")
    for row in 1 2 3 4; do
        set -- ${paper[$row]}
        echo "| TransNormerLLM-7B, paper (8 x A100 80G, FSDP) | $1 | $2 | $3 GB | - | $4 |" \
             "$(python3 -c "print(f'{$2 / 32048.6:.2f}')") |"
    done
    for tp in $TPS; do
        [ -n "${rate[$tp]}" ] || continue
        python3 - "$tp" "${rate[$tp]}" "${memory[$tp]:-0}" "${peak[$tp]:-0}" "${rate[1]:-}" "${memory[1]:-}" "$GPUS" <<'EOF'
import sys
tp, rate, memory, peak, rate1, memory1, gpus = sys.argv[1:]
gb = lambda mib: float(mib) * 1048576 / 1e9
saved = f"{1 - float(memory) / float(memory1):.1%}" if memory1 and tp != "1" else "-"
efficiency = f"{float(rate) / float(rate1):.2f}" if rate1 else "-"
print(f"| TransNormerLLM-7B, tnllm ({gpus} x GPU, ZeRO-1) | {tp} | {float(rate):.1f} | {gb(memory):.1f} GB | "
      f"{gb(peak):.1f} GB | {saved} | {efficiency} |")
EOF
    done
} | tee "$OUT/tp_table.md"
rm -rf "$RUNS"
exit $status
