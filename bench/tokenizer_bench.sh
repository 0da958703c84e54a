#!/bin/sh
# The tokenizer benchmark, one run, one table:
#  - training a 32000-piece BPE on the corpus (bench/tokenizer_corpus.sh):
#    tnllm with 1 and 2 threads, SentencePiece's spm_train (BPE, byte
#    fallback, split digits, identity normalization, every line kept) with 2;
#    MB/s and s per GB of wall-clock time of the whole command, and its CPU
#    seconds (all threads; on a shared machine the fairer figure);
#  - single-thread encoding: tnllm, the naive BPE, and the npm tokenizers
#    that run here (npm install --prefix bench: tokenizers.js with tnllm's
#    tokenizer.json, tiktoken's WASM build with its own cl100k_base) on
#    tnllm's vocabulary; tnllm and spm_encode on spm_train's model (tnllm
#    reads the .model); CPU seconds of the encoding thread (spm_encode: of
#    the process, reading and writing included). Then adversarial inputs.
# "tnllm is" compares with the tnllm row of the same task, threads, input
# and vocabulary (tnllm's own for tiktoken, whose vocabulary differs).
# usage: sh bench/tokenizer_bench.sh [FILE...]   (default bench/data/en.txt bench/data/zh.txt)
set -eu
cd "$(dirname "$0")/.."
make -s tnllm build/bench/tokenizer_bench
[ -f bench/data/en.txt ] || sh bench/tokenizer_corpus.sh
[ $# -gt 0 ] || set -- bench/data/en.txt bench/data/zh.txt
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rows="$out/rows.tsv"
inputs=$(for f in "$@"; do basename "$f"; done | paste -sd+)
megabytes=$(cat "$@" | wc -c | awk '{ printf "%.2f", $1 / 1e6 }')
now() { date +%s.%N; }
# cpu_seconds COMMAND...: runs it (output to $out/log) and prints the user +
# system seconds of it and its children, from the shell's `times`.
cpu_seconds() {
    sh -c '"$@" > "$LOG" 2>&1 || { cat "$LOG" >&2; exit 1; }; times' sh "$@" |
        awk 'NR == 2 { split($1, u, "m"); split($2, s, "m"); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }'
}
export LOG="$out/log"
# train NAME THREADS COMMAND...: times the command, appends a row.
train() {
    name=$1 threads=$2
    shift 2
    start=$(now)
    cpu=$(cpu_seconds "$@")
    end=$(now)
    awk -v n="$name" -v t="$threads" -v i="$inputs" -v mb="$megabytes" -v s="$start" -v e="$end" -v c="$cpu" \
        'BEGIN { printf "train\t%s\tits own, 32000\t%s\t%s\t%s\t%.4g\t\t%.4g\n", n, t, i, mb, mb / (e - s), c }' >> "$rows"
}
for threads in 1 2; do
    train tnllm "$threads" ./tnllm tokenizer train --vocab-size 32000 -t "$threads" -o "$out/tokenizer.json" "$@"
done
if command -v spm_train >/dev/null 2>&1; then
    cat "$@" > "$out/corpus.txt"
    train spm_train 2 spm_train --input="$out/corpus.txt" --model_prefix="$out/spm" --vocab_size=32000 \
        --model_type=bpe --byte_fallback=true --split_digits=true --normalization_rule_name=identity \
        --remove_extra_whitespaces=false --allow_whitespace_only_pieces=true --max_sentence_length=1000000 \
        --num_threads=2
else
    echo "(spm_train and spm_encode skipped: apt-get install sentencepiece)"
fi

# Encoding rows: implementation, input, MB, MB/s, ids -> the table's columns.
encode_rows() {
    awk -F'\t' -v v="$1" '{ printf "encode\t%s\t%s\t1\t%s\t%s\t%s\t%s\t%.4g\n", $1, v, $2, $3, $4, $5, ($4 > 0 ? $3 / $4 : 0) }'
}
./build/bench/tokenizer_bench "$out/tokenizer.json" "$@" | encode_rows "tnllm's, 32000" >> "$rows"
if command -v node >/dev/null 2>&1 && [ -d bench/node_modules/@huggingface/tokenizers ]; then
    node bench/tokenizer_js_bench.mjs bench/node_modules "$out" "$@" |
        while IFS="$(printf '\t')" read -r impl file mb speed ids; do
            case $impl in tiktoken*) vocab="cl100k_base" ;; *) vocab="tnllm's, 32000" ;; esac
            printf '%s\t%s\t%s\t%s\t%s\n' "$impl" "$file" "$mb" "$speed" "$ids" | encode_rows "$vocab"
        done >> "$rows"
else
    echo "(npm tokenizers skipped: node or bench/node_modules missing; npm install --prefix bench)"
fi
if [ -f "$out/spm.model" ]; then
    ./build/bench/tokenizer_bench --label tnllm "$out/spm.model" "$@" | encode_rows "spm_train's, 32000" >> "$rows"
    for f in "$@"; do
        cpu=$(cpu_seconds spm_encode --model="$out/spm.model" --output_format=id --input="$f")
        awk -v f="$(basename "$f")" -v bytes="$(wc -c < "$f")" -v cpu="$cpu" -v ids="$(wc -w < "$LOG")" \
            'BEGIN { printf "spm_encode\t%s\t%.2f\t%.4g\t%s\n", f, bytes / 1e6, bytes / 1e6 / cpu, ids }' |
            encode_rows "spm_train's, 32000" >> "$rows"
    done
fi

echo "== tokenizer benchmark on $(uname -m), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')); $(date -u +%Y-%m-%d)"
awk -F'\t' '
    { rows[NR] = $0; key = $1 SUBSEP $3 SUBSEP $4 SUBSEP $5
      if ($2 == "tnllm" && !(key in ref)) ref[key] = $7
      if ($2 == "tnllm" && ($1 == "train" || $3 == "tnllm'"'"'s, 32000")) fallback[$1 SUBSEP $4 SUBSEP $5] = $7 }
    END {
        printf "| %-6s | %-15s | %-19s | %7s | %-26s | %6s | %7s | %8s | %7s | %9s | %8s |\n", "task", "implementation", \
            "vocabulary", "threads", "input", "MB", "MB/s", "s per GB", "CPU s", "ids", "tnllm is"
        print "|--------|-----------------|---------------------|---------|----------------------------|--------|---------|----------|---------|-----------|----------|"
        for (i = 1; i <= NR; i++) {
            split(rows[i], f, "\t")
            key = f[1] SUBSEP f[3] SUBSEP f[4] SUBSEP f[5]
            r = (key in ref) ? ref[key] : fallback[f[1] SUBSEP f[4] SUBSEP f[5]]
            ratio = (f[2] != "tnllm" && f[7] > 0 && r != "") ? sprintf("%.3gx", r / f[7]) : ""
            printf "| %-6s | %-15s | %-19s | %7s | %-26s | %6s | %7.3g | %8.0f | %7.3g | %9s | %8s |\n", f[1], f[2], \
                f[3], f[4], f[5], f[6], f[7], (f[7] > 0 ? 1000 / f[7] : 0), f[9], f[8], ratio
        }
    }' "$rows"
