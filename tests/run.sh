#!/bin/sh
# Runs every test binary given, sums their "N passed, M failed" lines and
# fails if any test failed, any binary crashed or printed no summary. A
# comparison a test skips (a missing external tool, e.g. tokenizers.js
# offline) is printed and counted in the total line, so it is seen.
passed=0; failed=0; skipped=0; broken=""
for bin in "$@"; do
    out=$("$bin" 2>&1); rc=$?
    printf '%s\n' "$out" | grep -E 'FAIL|passed,|skipped:' || true
    skipped=$((skipped + $(printf '%s\n' "$out" | grep -c 'skipped:')))
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
note=""; [ "$skipped" -gt 0 ] && note=", $skipped comparisons skipped (see their lines above)"
echo "TOTAL: $passed passed, $failed failed$note"
if [ -n "$broken" ]; then echo "broken test binaries:$broken"; exit 1; fi
[ "$failed" -eq 0 ]
