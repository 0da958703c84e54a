#!/bin/sh
# The tokenizer benchmark, one run: trains a 32000-piece tokenizer on the
# corpus (bench/tokenizer_corpus.sh), then prints one table of single-thread
# encode throughput (CPU time) for tnllm, the naive BPE, and the npm
# tokenizers that run here (npm install --prefix bench), on the same text.
# usage: sh bench/tokenizer_bench.sh [FILE...]   (default bench/data/en.txt bench/data/zh.txt)
set -eu
cd "$(dirname "$0")/.."
make -s tnllm
cc -O2 -std=c11 -D_GNU_SOURCE -fopenmp -Isrc bench/tokenizer_bench.c build/libtnllm.a -lcjson -lm -fopenmp \
    -o build/tokenizer_bench
[ -f bench/data/en.txt ] || sh bench/tokenizer_corpus.sh
[ $# -gt 0 ] || set -- bench/data/en.txt bench/data/zh.txt
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "== training, vocabulary 32000, on $*"
for threads in 1 2; do
    printf 'threads %s: ' "$threads"
    ./tnllm tokenizer train --vocab-size 32000 -t "$threads" -o "$out/tokenizer.json" "$@" 2>/dev/null | tr '\n' ' '
    echo
done
./build/tokenizer_bench "$out/tokenizer.json" "$@" > "$out/rows.tsv"
if command -v node >/dev/null 2>&1 && [ -d bench/node_modules/@huggingface/tokenizers ]; then
    node bench/tokenizer_js_bench.mjs bench/node_modules "$out" "$@" >> "$out/rows.tsv"
else
    echo "(npm tokenizers skipped: node or bench/node_modules missing; npm install --prefix bench)"
fi
echo "== encoding, one thread, MB/s of CPU time (inputs in 64 KiB chunks ending at a line break)"
awk -F'\t' '
    $1 == "tnllm" { ours[$2] = $4 }
    { rows[NR] = $0 }
    END {
        printf "| %-16s | %-26s | %7s | %8s | %10s | %9s |\n", "implementation", "input", "MB", "MB/s", "ids", "tnllm is"
        printf "|%s|%s|%s|%s|%s|%s|\n", "------------------", "----------------------------", "---------", "----------", "------------", "-----------"
        for (i = 1; i <= NR; i++) {
            split(rows[i], f, "\t")
            ratio = (f[1] != "tnllm" && f[4] > 0 && ours[f[2]] != "") ? sprintf("%.1fx", ours[f[2]] / f[4]) : ""
            printf "| %-16s | %-26s | %7s | %8s | %10s | %9s |\n", f[1], f[2], f[3], f[4], f[5], ratio
        }
    }' "$out/rows.tsv"
