#!/usr/bin/env python3
"""compare_weights.py MODEL_A MODEL_B INIT [TOLERANCE]: the final weights of
two runs that trained the same model from the same initialisation INIT (a
`tnllm init --config RUN/model/config.json --seed S` directory) on the same batches, compared by
how far they moved: |A - B| / |B - INIT| (l2 over every tensor), i.e. the
difference of the two training updates relative to the update itself, and
the largest element difference. Exit status 1 when the relative difference
exceeds TOLERANCE (default 0.05; scripts/device_dist.sh says why).
Reads the model directories' *.safetensors (F32) with numpy."""
import glob
import json
import struct
import sys

import numpy as np

# -h/--help prints this file's description; another --option is refused (not taken for a path)
if any(a in ("-h", "--help") for a in sys.argv[1:]):
    sys.exit(print(__doc__))
for option in (a for a in sys.argv[1:] if a.startswith("--")):
    sys.exit(f"{sys.argv[0]}: unknown option {option} (--help)")


def read(directory):
    tensors = {}
    for path in sorted(glob.glob(f"{directory}/*.safetensors")):
        with open(path, "rb") as f:
            size = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(size))
            data = f.read()
        for name, info in header.items():
            if name == "__metadata__":
                continue
            if info["dtype"] != "F32":
                sys.exit(f"{path}: {name} is {info['dtype']}, expected F32")
            begin, end = info["data_offsets"]
            tensors[name] = np.frombuffer(data[begin:end], dtype=np.float32).astype(np.float64)
    if not tensors:
        sys.exit(f"{directory}: no *.safetensors")
    return tensors


if len(sys.argv) not in (4, 5):
    sys.exit("usage: compare_weights.py MODEL_A MODEL_B INIT [TOLERANCE]")
a, b, init = read(sys.argv[1]), read(sys.argv[2]), read(sys.argv[3])
tolerance = float(sys.argv[4]) if len(sys.argv) > 4 else 0.05
if set(a) != set(b) or set(a) != set(init):
    sys.exit("the models hold different tensors")
for name in a:
    if not a[name].size == b[name].size == init[name].size:
        sys.exit(f"{name}: {a[name].size}, {b[name].size} and {init[name].size} elements: not the same model")
difference = sum(float(np.sum((a[n] - b[n]) ** 2)) for n in a) ** 0.5
update = sum(float(np.sum((b[n] - init[n]) ** 2)) for n in a) ** 0.5
largest = max(float(np.max(np.abs(a[n] - b[n]))) for n in a)
if update == 0:
    sys.exit("MODEL_B equals INIT: no update to compare with")
relative = difference / update
print(f"weights: |A - B| / |B - init| = {relative:.2e} (<= {tolerance}), largest element difference {largest:.2e}, "
      f"update norm {update:.3f}")
sys.exit(0 if relative <= tolerance else 1)
