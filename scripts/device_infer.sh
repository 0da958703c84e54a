#!/bin/bash
# device_infer.sh: GPU inference on the device machine, in one call (well
# under 3 minutes on one H100/H200):
#  1. build/cuda/check_infer: the GPU session against the CPU session on the
#     golden model and small random ones (prefill logits, 64 greedy steps,
#     batched decoding, eval perplexity, the matrix-vector kernels);
#  2. build/cuda/bench_decode: ms/token at batch 1 for the 385M model (bf16)
#     at contexts 1K, 8K, 32K, and tokens/s at batch 64 (arguments: its flags);
#  3. ./tnllm generate and eval on the golden model with --device cuda and
#     --device cpu (greedy text and perplexity side by side);
# then a summary table, last. Uses the binaries built here by `make`
# (carried along with the shared libraries they link, in LIB_DIR if set:
# scripts/carry_libs.sh LIB_DIR tnllm build/cuda/check_infer
# build/cuda/bench_decode); cuBLAS comes from the machine's CUDA or its
# Python nvidia-cublas package.
# Logs go to $OUT: device.txt, check_infer.log, bench_decode.log,
# generate_{cuda,cpu}.txt, generate_cuda.err, eval_{cuda,cpu}.log.
# With SANITIZE=1, also sanitize.log: check_infer under compute-sanitizer's
# memcheck (a few minutes more).
# Exit status: non-zero if a check failed.
set -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device_infer}
. scripts/device_env.sh
status=0
timeout 120 build/cuda/check_infer "${SEED:-$RANDOM}" 2>&1 | tee "$OUT/check_infer.log" || status=1
timeout 120 build/cuda/bench_decode "$@" 2>&1 | tee "$OUT/bench_decode.log" || status=1
if [ "${SANITIZE:-0}" = 1 ]; then
    timeout 300 compute-sanitizer --tool memcheck --error-exitcode 3 build/cuda/check_infer 1 2>&1 |
        grep -E "ERROR SUMMARY|========= (Invalid|Error)|passed," | head -20 | tee "$OUT/sanitize.log"
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
fi

model=tests/golden/tiny
prompt='The quick brown fox'
for device in cuda cpu; do
    timeout 60 ./tnllm generate -m $model -p "$prompt" -n 64 --temp 0 --device $device \
        >"$OUT/generate_$device.txt" 2>"$OUT/generate_$device.err" || status=1
    timeout 60 ./tnllm eval -m $model --text README.md --ctx 512 --batch 4 --device $device 2>/dev/null \
        | tee "$OUT/eval_$device.log" || status=1
done
cat "$OUT/generate_cuda.err"

ppl() { sed -n 's/.*perplexity \([0-9.]*\).*/\1/p' "$1"; }
echo "== summary"
echo "| what | result |"
echo "|---|---|"
echo "| device | $(tail -n 1 "$OUT/device.txt") |"
echo "| check_infer | $(grep -E '^check_infer: [0-9]+ passed' "$OUT/check_infer.log" || echo 'no summary line (crashed?)') |"
grep -E '^FAIL' "$OUT/check_infer.log" | sed 's/^/| check_infer failure | /; s/$/ |/'
echo "| greedy decode (check_infer, per model) | $(grep -o 'greedy decode: [0-9]* of [0-9]* argmax equal, [0-9]* near ties' "$OUT/check_infer.log" | sed 's/greedy decode: //' | paste -sd ';' -) |"
grep -E '^\| +[0-9]+ \|' "$OUT/bench_decode.log" | awk -F'|' '{printf "| batch 1, context %d | %s ms/token, prefill %s tokens/s |\n", $2, $4 + 0, $3 + 0}'
echo "| batch-1 flatness | $(grep '^decode at batch 1' "$OUT/bench_decode.log" | sed 's/^decode at batch 1: //') |"
echo "| batch 64 | $(grep -o '[0-9.]* ms per step, [0-9]* tokens/s' "$OUT/bench_decode.log") |"
echo "| CUDA graphs | $(grep '^cuda:' "$OUT/bench_decode.log" | sed 's/.*; //') |"
if cmp -s "$OUT/generate_cuda.txt" "$OUT/generate_cpu.txt"; then same=identical; else same="differ (see generate_*.txt)"; fi
echo "| generate --temp 0 -n 64, golden model: cuda vs cpu text | $same |"
echo "| eval README.md, golden model: perplexity cuda / cpu | $(ppl "$OUT/eval_cuda.log") / $(ppl "$OUT/eval_cpu.log") |"
echo "| goals (issue 8) | <= 1 ms/token at batch 1, flat; >= 10000 tokens/s at batch 64 |"
exit $status
