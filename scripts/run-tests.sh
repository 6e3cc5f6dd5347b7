#!/usr/bin/env bash
# Run test binaries one after another; print each one's output and a closing
# "N passed, N failed" line over all of them.  Exit non-zero if any failed.
set -u
passed=0
failed=0
failed_bins=()
for t in "$@"; do
    echo "=== $(basename "$t")"
    out=$(mktemp)
    if "$t" >"$out" 2>&1; then rc=0; else rc=$?; fi
    cat "$out"
    # cmocka's summary lines, or a plain "name: N passed, N failed" line
    p=$(grep -Eo '\[  PASSED  \] [0-9]+' "$out" | awk '{s+=$NF} END {print s+0}')
    f=$(grep -Eo '\[  FAILED  \] [0-9]+' "$out" | awk '{s+=$NF} END {print s+0}')
    if plain=$(grep -E '^[A-Za-z0-9_-]+: [0-9]+ passed, [0-9]+ failed' "$out" | tail -1) && [ -n "$plain" ]; then
        p=$((p + $(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$plain")))
        f=$((f + $(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$plain")))
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p))
    failed=$((failed + f))
    [ "$rc" -ne 0 ] && failed_bins+=("$(basename "$t")")
    rm -f "$out"
done
[ ${#failed_bins[@]} -gt 0 ] && echo "failing: ${failed_bins[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ ${#failed_bins[@]} -eq 0 ]
