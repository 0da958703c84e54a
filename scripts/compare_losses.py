#!/usr/bin/env python3
"""compare_losses.py RUN_A RUN_B [FIRST_TOLERANCE]: the training-loss curves
of two runs (metrics.jsonl) step by step: the largest relative difference of
one step's loss, that of the mean loss over windows of 20 steps, and the
validation losses. Exit status 1 when the windowed difference exceeds 2%
(issue 8), or, given FIRST_TOLERANCE, when the first common step's losses
differ by more than it, relatively (runs from the same weights on the same
batch: scripts/device_tp.sh)."""
import json
import sys

# -h/--help prints this file's description; another --option is refused (not taken for a path)
if any(a in ("-h", "--help") for a in sys.argv[1:]):
    sys.exit(print(__doc__))
for option in (a for a in sys.argv[1:] if a.startswith("--")):
    sys.exit(f"{sys.argv[0]}: unknown option {option} (--help)")


def read(run):
    losses, val = {}, {}
    with open(f"{run}/metrics.jsonl") as f:
        for line in f:
            record = json.loads(line)
            if "loss" in record:
                losses[record["step"]] = record["loss"]
            if "val_loss" in record:
                val[record["step"]] = record["val_loss"]
    return losses, val


a, val_a = read(sys.argv[1])
b, val_b = read(sys.argv[2])
steps = sorted(set(a) & set(b))
step_worst = max(abs(a[s] - b[s]) / abs(b[s]) for s in steps)
window_worst = 0.0
for start in range(0, len(steps) - 19, 20):
    window = steps[start:start + 20]
    mean_a = sum(a[s] for s in window) / 20
    mean_b = sum(b[s] for s in window) / 20
    window_worst = max(window_worst, abs(mean_a - mean_b) / mean_b)
print(f"{len(steps)} common steps; first loss {a[steps[0]]:.4f} vs {b[steps[0]]:.4f}, "
      f"last {a[steps[-1]]:.4f} vs {b[steps[-1]]:.4f}")
print(f"largest relative difference: one step {step_worst:.4f}, mean of 20 steps {window_worst:.4f}")
for s in sorted(set(val_a) & set(val_b)):
    print(f"validation loss at step {s}: {val_a[s]:.4f} vs {val_b[s]:.4f}")
first = abs(a[steps[0]] - b[steps[0]]) / abs(b[steps[0]])
failed = window_worst > 0.02
if len(sys.argv) > 3:
    print(f"first common step {steps[0]}: losses {a[steps[0]]:.7f} vs {b[steps[0]]:.7f}, relative difference "
          f"{first:.2e} (tolerance {sys.argv[3]})")
    failed |= first > float(sys.argv[3])
sys.exit(1 if failed else 0)
