#!/bin/sh
# Runs every test binary given, sums their "N passed, M failed" lines and
# fails if any test failed, any binary crashed or printed no summary.
passed=0; failed=0; broken=""
for bin in "$@"; do
    out=$("$bin" 2>&1); rc=$?
    printf '%s\n' "$out" | grep -E 'FAIL|passed,' || true
    line=$(printf '%s\n' "$out" | grep -E '^[^ ]+: [0-9]+ passed, [0-9]+ failed$' | tail -n 1)
    if [ -z "$line" ]; then
        printf '%s\n' "$out" | tail -n 20
        broken="$broken $bin(rc=$rc)"; continue
    fi
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')
    passed=$((passed + p)); failed=$((failed + f))
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && broken="$broken $bin(rc=$rc)"
done
echo "TOTAL: $passed passed, $failed failed"
if [ -n "$broken" ]; then echo "broken test binaries:$broken"; exit 1; fi
[ "$failed" -eq 0 ]
