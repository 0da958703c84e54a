#!/bin/bash
# device_attention.sh: the GPU attention check and benchmark in one call on
# the device machine. Uses build/cuda/* built here by `make cuda` (carried
# along); builds them there only if they are missing. Logs go to $OUT:
# device.txt, check.log, bench.log, bench.tsv, torch.log.
# With SANITIZE=1, also sanitize.log: the small cases of the check under
# compute-sanitizer's memcheck, racecheck and synccheck.
# With PROFILE=1, also ncu.txt: Nsight Compute sections of the forward's
# chunked kernels at n=8192 (clocks left as they are), and sass128.txt: the
# SASS of the dk=128 chunked output kernel with a count of its memory and matrix
# instructions, and sass_wgmma.txt the same for the wgmma forward.
# Exit status: non-zero if the correctness check failed.
set -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device_attention}
[ -x build/cuda/check_attention ] && [ -x build/cuda/bench_attention ] || make cuda NVCC=/usr/local/cuda/bin/nvcc || exit 1
. scripts/device_env.sh
build/cuda/check_attention "${SEED:-$RANDOM}" 2>&1 | tee "$OUT/check.log"
check=$?
if [ "${SANITIZE:-0}" = 1 ]; then
    for tool in memcheck racecheck synccheck; do
        echo "== compute-sanitizer --tool $tool"
        timeout 90 compute-sanitizer --tool "$tool" --error-exitcode 3 build/cuda/check_attention 1 small 2>&1 |
            grep -E "ERROR SUMMARY|RACECHECK SUMMARY|========= (Invalid|Race|Barrier|Error)|passed," | head -20
        echo "exit status ${PIPESTATUS[0]}"
    done 2>&1 | tee "$OUT/sanitize.log"
fi
build/cuda/bench_attention "$OUT/bench.tsv" 2>&1 | tee "$OUT/bench.log"
PYTHONUNBUFFERED=1 python3 bench/attention_torch.py "$OUT/bench.tsv" 2>&1 | tee "$OUT/torch.log"
if [ "${PROFILE:-0}" = 1 ]; then
    ncu --clock-control none -k regex:chunked_kernel --launch-skip 0 --launch-count 2 \
        --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
        --section WarpStateStats --section Occupancy --section LaunchStats \
        build/cuda/bench_attention - 8192 >"$OUT/ncu.txt" 2>&1
    grep -E "chunked_kernel|Duration|Throughput|Warp Cycles|Registers" "$OUT/ncu.txt" | head -40
    cuobjdump -sass -fun '_ZN12tn_attention14chunked_kernelILi128ELi128ELb1EEEvNS_8AttnPassENS_13ChunkedStatesE' build/cuda/bench_attention \
        >"$OUT/sass128.txt"
    grep -oE '(LDSM|LDS|STS|HMMA|LDGSTS|LDL|STL|MUFU|BAR)[.A-Z0-9_]*' "$OUT/sass128.txt" | sort | uniq -c
    # the wgmma forward (sm_90a): HGMMA, not HMMA, for its products
    cuobjdump -sass -fun '_ZN12tn_attention12wgmma_kernelENS_8AttnPassENS_11WgmmaStatesE' build/cuda/bench_attention \
        >"$OUT/sass_wgmma.txt"
    grep -oE '(HGMMA|WARPGROUP|LDSM|STS|LDGSTS|LDL|STL|BAR)[.A-Z0-9_]*' "$OUT/sass_wgmma.txt" | sort | uniq -c
fi
echo "== summary"
grep -E "FAIL|worst|passed," "$OUT/check.log"
cat "$OUT/torch.log"
exit $check
