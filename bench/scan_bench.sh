#!/usr/bin/env bash
# Exact-search scan rate beside the measured memory-read bandwidth
# (bench/scan_bench.c explains both measurements), at n x d = 1M x 128
# and 200k x 768 (512 MB and 614 MB of vectors: far beyond the caches),
# 1 and 2 threads.  Prints the tables and writes them to BENCH_OUT
# (docs/bench-scan.md; empty: no file).  About 30 s.
#
# Environment: BUILD (make's build directory), BENCH_SKIP_BUILD=1 (use the
# existing library), BENCH_THREADS (2), BENCH_OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
lib=$build/libveclog.a
out=${BENCH_OUT-docs/bench-scan.md}
[ -n "${BENCH_SKIP_BUILD:-}" ] || make --no-print-directory "$lib" >&2
mkdir -p "$build/bench"
cc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -pthread -I. bench/scan_bench.c "$lib" -o "$build/bench/scan_bench" \
    -lrocksdb -lrdkafka -lcjson -levent -levent_pthreads -lyaml -lcrypto -lpthread -lm
load0=$(cut -d' ' -f1-3 /proc/loadavg)
report=$( {
    echo "# Exact-search scan rate vs memory-read bandwidth"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average at start $load0"
    echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "- command: \`bench/scan_bench.sh\` (part of \`make bench\`)"
    echo "- scan: dist_score (Dot) of one query against every vector, the kernels of exact search; bandwidth: 32-byte loads summed, same buffer, same threads"
    for c in "1000000 128" "200000 768"; do
        set -- $c
        echo
        echo "## n = $1, d = $2 ($(( $1 * $2 * 4 / 1000000 )) MB of vectors)"
        echo
        "$build/bench/scan_bench" -n "$1" -d "$2" -t "${BENCH_THREADS:-2}" 2>&1 >/dev/null
    done
} )
echo "$report"
[ -z "$out" ] || echo "$report" >"$out"
