#!/usr/bin/env python3
"""kernel_times.py CSV: sums Nsight Compute's gpu__time_duration per kernel name
(ncu --csv --metrics gpu__time_duration.sum) and prints a table, largest first:
launches, total ms, share of all kernel time. The ncu CSV has one row per
(kernel launch, metric); lines before the header (the program's own output)
are skipped."""
import csv
import sys
from collections import defaultdict

# -h/--help prints this file's description; another --option is refused (not taken for a path)
if any(a in ("-h", "--help") for a in sys.argv[1:]):
    sys.exit(print(__doc__))
for option in (a for a in sys.argv[1:] if a.startswith("--")):
    sys.exit(f"{sys.argv[0]}: unknown option {option} (--help)")

NANOSECONDS = {"nsecond": 1, "ns": 1, "usecond": 1e3, "us": 1e3, "msecond": 1e6, "ms": 1e6,
               "second": 1e9, "s": 1e9}  # per unit ncu may print (spelled out or abbreviated by version)


def main(path):
    with open(path, newline="") as f:
        lines = f.read().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith('"ID"')), None)
    if start is None:
        sys.exit(f"kernel_times.py: {path}: no ncu CSV header (\"ID\",...) found")
    total_ns, launches = defaultdict(float), defaultdict(int)
    for row in csv.DictReader(lines[start:]):
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        name = row["Kernel Name"].split("(")[0][:70]
        unit = row["Metric Unit"]
        if unit not in NANOSECONDS:
            sys.exit(f"kernel_times.py: {path}: unknown time unit '{unit}' (have {', '.join(NANOSECONDS)})")
        total_ns[name] += float(row["Metric Value"].replace(",", "")) * NANOSECONDS[unit]
        launches[name] += 1
    whole = sum(total_ns.values())
    if not launches:
        sys.exit(f"kernel_times.py: {path}: no gpu__time_duration.sum rows (did ncu profile any kernel?)")
    print("| kernel | launches | ms | share |\n|---|---|---|---|")
    for name in sorted(total_ns, key=total_ns.get, reverse=True):
        print(f"| {name} | {launches[name]} | {total_ns[name] / 1e6:.3f} | {100 * total_ns[name] / whole:.1f}% |")
    print(f"| all kernels | {sum(launches.values())} | {whole / 1e6:.3f} | 100% |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: kernel_times.py NCU_CSV")
    main(sys.argv[1])
