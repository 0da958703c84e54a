#!/bin/sh
# The data pipeline of §4.1 end to end, with its iterated self-cleaning loop:
#   clean (rules) -> dedup (exact, then MinHash-LSH) -> repeat ROUNDS times:
#     train a small evaluation model on the current corpus (tnllm train),
#     score every document's perplexity under it (tnllm data score),
#     drop the DROP_TOP % most perplexing of each group (tnllm data filter),
#     write a review page of kept and dropped samples (tnllm data review)
#   and the next round trains on what was kept.
# Every step's output, rejects and summary stay in WORK, one directory per round.
#
# usage: scripts/selfclean.sh [CORPUS.jsonl] [WORK]
#   (default: the bundled corpus data/corpus.jsonl, runs/selfclean)
# environment: TNLLM (binary, default ./tnllm), ROUNDS (default 2), STEPS (training steps per
#   round, default 100), CTX (default 128), SIZE (model size, default tiny), DROP_TOP (default 5),
#   GROUP_BY (metadata field for per-group percentiles, default none), THREADS (default all)
set -eu
CORPUS=${1:-data/corpus.jsonl}
WORK=${2:-runs/selfclean}
TNLLM=${TNLLM:-./tnllm}
ROUNDS=${ROUNDS:-2}
STEPS=${STEPS:-100}
CTX=${CTX:-128}
SIZE=${SIZE:-tiny}
DROP_TOP=${DROP_TOP:-5}
GROUP=${GROUP_BY:+--group-by $GROUP_BY}
THREADS=${THREADS:+-t $THREADS}

if ! "$TNLLM" train --help >/dev/null 2>&1; then
    echo "selfclean: '$TNLLM train' is not available: this loop needs the training command" >&2
    exit 1
fi
mkdir -p "$WORK"
echo "== clean and dedup $CORPUS"
"$TNLLM" data clean "$CORPUS" -o "$WORK/clean.jsonl" --summary "$WORK/clean-summary.json" $THREADS
"$TNLLM" data dedup "$WORK/clean.jsonl" -o "$WORK/round0.jsonl" $THREADS
current="$WORK/round0.jsonl"

round=1
while [ "$round" -le "$ROUNDS" ]; do
    dir="$WORK/round$round"
    mkdir -p "$dir"
    echo "== round $round: train the evaluation model on $current"
    # Byte-level tokenizer: the model's vocabulary is the tokenizer's (259).
    "$TNLLM" train --size "$SIZE" --data "$current" --steps "$STEPS" --ctx "$CTX" --warmup $((STEPS / 10 + 1)) \
        --save-every 0 --eval-every 0 -o "$dir/train" $THREADS
    echo "== round $round: score, filter, review"
    "$TNLLM" data score "$current" -m "$dir/train/model" --ctx "$CTX" -o "$dir/scored.jsonl" $THREADS
    "$TNLLM" data filter "$dir/scored.jsonl" -o "$dir/kept.jsonl" --drop-top "$DROP_TOP" $GROUP $THREADS
    "$TNLLM" data review --kept "$dir/kept.jsonl" --dropped "$dir/kept.rejects.jsonl" -n 20 -o "$dir/review.html"
    echo "   review $dir/review.html; record verdicts with its button, then:"
    echo "   $TNLLM data review --verdicts verdicts.jsonl"
    current="$dir/kept.jsonl"
    round=$((round + 1))
done
echo "== done: $current ($(wc -l < "$current") documents, from $(wc -l < "$CORPUS") in $CORPUS)"
