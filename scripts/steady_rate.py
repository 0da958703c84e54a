#!/usr/bin/env python3
"""steady_rate.py RUN [FROM_STEP]: the training throughput of RUN
(metrics.jsonl) from step FROM_STEP (default 3: after the first steps' cuBLAS
and NCCL set-up) to the last step logged: tokens over elapsed seconds
between the two, printed as a whole number of tokens/s. Exit status 1 when
the run logged no step past FROM_STEP."""
import json
import sys

# -h/--help prints this file's description; another --option is refused (not taken for a path)
if any(a in ("-h", "--help") for a in sys.argv[1:]):
    sys.exit(print(__doc__))
for option in (a for a in sys.argv[1:] if a.startswith("--")):
    sys.exit(f"{sys.argv[0]}: unknown option {option} (--help)")

first = int(sys.argv[2]) if len(sys.argv) > 2 else 3
points = {}
with open(f"{sys.argv[1]}/metrics.jsonl") as f:
    for line in f:
        record = json.loads(line)
        if "tokens" in record:
            points[record["step"]] = (record["tokens"], record["elapsed_s"])
last = max(points, default=0)
if first not in points or last <= first:
    sys.exit(f"{sys.argv[1]}: no step logged after step {first}")
tokens = points[last][0] - points[first][0]
seconds = points[last][1] - points[first][1]
print(f"{tokens / seconds:.0f}")
