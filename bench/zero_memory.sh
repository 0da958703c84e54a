#!/bin/sh
# Peak resident memory of each rank of a 2-rank CPU training run, ZeRO-0
# against ZeRO-3, for a model of a few hundred MB (--size 125M with a
# 32000-token vocabulary: 125M parameters, 0.5 GB in float32), two steps.
# Each rank runs under /usr/bin/time, which prints its peak RSS; the
# trainer's memory line (rank 0's buffers) is printed beside it.
#   usage: bench/zero_memory.sh [TNLLM]   (default ./tnllm; give another
#          build, e.g. an older one, to compare)
# Takes a few minutes on 2 cores. Needs mpirun and /usr/bin/time.
set -e
tnllm=${1:-./tnllm}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for zero in 0 3; do
    OMP_NUM_THREADS=1 OMPI_MCA_btl_vader_single_copy_mechanism=none \
        mpirun --oversubscribe --allow-run-as-root -np 2 \
        /usr/bin/time -f "ZeRO-$zero: a rank's peak RSS %M KiB" \
        "$tnllm" train --size 125M --vocab 32000 --data data/corpus.jsonl --ctx 64 --micro-batch 1 \
        --batch-tokens 128 --steps 2 --eval-every 0 --eval-windows 1 --log-every 1 --zero "$zero" \
        -o "$dir/zero$zero" >"$dir/log" 2>&1 || { cat "$dir/log"; exit 1; }
    grep -E "peak RSS|memory per rank" "$dir/log"
done
