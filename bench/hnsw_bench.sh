#!/usr/bin/env bash
# HNSW benchmark: veclog's index (store/hnsw.h) against hnswlib and faiss
# (IndexHNSWFlat) on the same data, same parameters (M 16,
# ef_construction 100, L2, k 10).
#
#   bench/hnsw_bench.sh
#
# For each configuration (n x d):
# 1. `hnsw_bench gen` writes seeded clustered data (100 Gaussian centres,
#    unit noise) as .fbin files, the exact top-10 of every query, and the
#    masks and exact answers of three filters (1%, 10%, 50% of the points);
# 2. `hnsw_bench run` (C, linked with build/libveclog.a) and
#    bench/hnsw_peer.py (/usr/bin/python3 with Debian's python3-hnswlib,
#    python3-faiss, python3-numpy; installed here when missing) each build
#    their index with BENCH_THREADS threads, sweep ef single-threaded,
#    run the filtered searches (ef 64), save and reopen the index;
# 3. prints a table with ratios veclog/hnswlib and veclog/faiss and writes
#    it to BENCH_OUT.
#
# Environment (defaults): BENCH_N and BENCH_DIM (unset: two configurations,
# 100000 x 128 and 20000 x 768; setting either runs one configuration,
# the other defaulting to 100000 resp. 128; 1M points only when asked, as
# BENCH_N=1000000), BENCH_QUERIES (1000), BENCH_EFS ("10 16 24 32 48 64 96
# 128 192 256"), BENCH_THREADS (2, for the builds), BENCH_SEED (7),
# BENCH_OUT (docs/bench-hnsw.md; empty: no file), BENCH_SKIP_BUILD=1 (use
# the existing library), BENCH_LIB (build/libveclog.a), BENCH_KEEP=1 (keep
# the data directory), BUILD (make's build directory).
#
# About 3-4 minutes with the defaults on 2 cores; most of it is the three
# builds of the 100k index and veclog's 1% filtered searches (which visit
# most of the graph, see store/hnsw.h).  Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${BUILD:-build}
lib=${BENCH_LIB:-$build/libveclog.a}
nq=${BENCH_QUERIES:-1000}
efs=${BENCH_EFS:-10 16 24 32 48 64 96 128 192 256}
threads=${BENCH_THREADS:-2}
seed=${BENCH_SEED:-7}
out_md=${BENCH_OUT-docs/bench-hnsw.md}
py=/usr/bin/python3
if [ -n "${BENCH_N:-}${BENCH_DIM:-}" ]; then
    configs=("${BENCH_N:-100000}x${BENCH_DIM:-128}")
else
    configs=(100000x128 20000x768)
fi

cmd=""
for v in BENCH_N BENCH_DIM BENCH_QUERIES BENCH_EFS BENCH_THREADS BENCH_SEED; do
    [ -n "${!v+x}" ] && cmd+="$v=$(printf %q "${!v}") "
done
cmd+="bench/hnsw_bench.sh"

say() { printf '%s\n' "$*" >&2; }

# Peers: Debian's packages, as scripts/deps.sh installs veclog's own.
pkgs=(python3-hnswlib python3-faiss python3-numpy)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "hnsw_bench: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >/dev/null
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -n "${BENCH_SKIP_BUILD:-}" ] || make --no-print-directory "$lib" >&2
mkdir -p "$build/bench"
bin=$build/bench/hnsw_bench
cc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -pthread -I. bench/hnsw_bench.c "$lib" -o "$bin" \
    -lrocksdb -lrdkafka -lcjson -levent -levent_pthreads -lyaml -lcrypto -lpthread -lm

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hnsw-bench.XXXXXX")
cleanup() { [ -n "${BENCH_KEEP:-}" ] && say "hnsw_bench: kept $tmp" || rm -rf "$tmp"; }
trap cleanup EXIT

load0=$(cut -d' ' -f1-3 /proc/loadavg)
results=$tmp/results.jsonl
: >"$results"
for c in "${configs[@]}"; do
    n=${c%x*}
    d=${c#*x}
    dir=$tmp/$c
    mkdir -p "$dir"
    say "hnsw_bench: n=$n d=$d: data and exact ground truth"
    "$bin" gen "$dir" "$n" "$d" "$nq" "$seed"
    say "hnsw_bench: n=$n d=$d: veclog"
    "$bin" run "$dir" "$threads" $efs | sed "s/^{/{\"n\":$n,\"d\":$d,/" >>"$results"
    say "hnsw_bench: n=$n d=$d: hnswlib, faiss"
    "$py" bench/hnsw_peer.py "$dir" "$threads" $efs | sed "s/^{/{\"n\":$n,\"d\":$d,/" >>"$results"
    rm -f "$dir"/*.fbin
done

machine="$(nproc) cores (nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(uname -sr); load average at start $load0"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
[ -z "$(git status --porcelain 2>/dev/null)" ] || commit+=" (with uncommitted changes)"
versions=$("$py" -c 'import faiss, numpy; print("faiss %s, numpy %s" % (faiss.__version__, numpy.__version__))')
versions+=", hnswlib $(dpkg-query -W -f='${Version}' python3-hnswlib)"

table=$("$py" - "$results" "$threads" "$nq" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
threads, nq = sys.argv[2], sys.argv[3]
engines = ["veclog", "hnswlib", "faiss"]

def get(n, d, eng, what, **kw):
    for r in rows:
        if (r["n"], r["d"], r["engine"], r["what"]) == (n, d, eng, what) and \
                all(r.get(k) == v for k, v in kw.items()):
            return r
    return None

def fmt(x, nd=1):
    if x is None:
        return "n/a"
    if isinstance(x, float) and abs(x) < 10 and nd == 1:
        return "%.3f" % x
    return ("%." + str(nd) + "f") % x if isinstance(x, float) else str(x)

def ratio(a, b):
    return "%.2f" % (a / b) if a is not None and b not in (None, 0) else "n/a"

def at95(n, d, eng):
    s = sorted((r for r in rows if (r["n"], r["d"], r["engine"], r["what"]) == (n, d, eng, "search")),
               key=lambda r: r["ef"])
    for r in s:
        if r["recall"] is not None and r["recall"] >= 0.95:
            return r
    return None

out = []
for n, d in sorted({(r["n"], r["d"]) for r in rows}, key=lambda t: (-t[0], t[1])):
    out.append("## n = %d, d = %d (L2, M 16, ef_construction 100, %s queries, k 10)\n" % (n, d, nq))
    out.append("| | veclog | hnswlib | faiss | veclog/hnswlib | veclog/faiss |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    def line(label, vals, better_high=True):
        v, h, f = vals
        out.append("| %s | %s | %s | %s | %s | %s |" % (label, fmt(v), fmt(h), fmt(f), ratio(v, h), ratio(v, f)))
    b = {e: get(n, d, e, "build") or {} for e in engines}
    line("build s (%s threads)" % threads, [b[e].get("seconds") for e in engines])
    line("build points/s", [b[e].get("points_per_s") for e in engines])
    a = {e: at95(n, d, e) for e in engines}
    line("smallest ef with recall@10 >= 0.95", [a[e]["ef"] if a[e] else None for e in engines])
    line("recall@10 at that ef", [a[e]["recall"] if a[e] else None for e in engines])
    line("QPS at that ef (1 thread)", [a[e]["qps"] if a[e] else None for e in engines])
    line("memory bytes/point (RSS growth over build)", [b[e].get("rss_bytes_per_point") for e in engines])
    p = {e: get(n, d, e, "persist") or {} for e in engines}
    line("save s", [p[e].get("save_s") for e in engines])
    line("open s (into RAM)", [p[e].get("open_s") for e in engines])
    line("open s (mmap)", [p[e].get("open_mmap_s") for e in engines])
    out.append("")
    out.append("veclog's own accounting (hnsw_memory_bytes): %.1f bytes/point.\n"
               % (b["veclog"].get("mem_bytes_per_point") or 0))
    out.append("| ef | veclog recall | veclog QPS | hnswlib recall | hnswlib QPS | faiss recall | faiss QPS | QPS veclog/hnswlib | QPS veclog/faiss |")
    out.append("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for ef in sorted({r["ef"] for r in rows if r["what"] == "search" and (r["n"], r["d"]) == (n, d)}):
        s = {e: get(n, d, e, "search", ef=ef) or {} for e in engines}
        out.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            ef, fmt(s["veclog"].get("recall"), 4), fmt(s["veclog"].get("qps"), 0),
            fmt(s["hnswlib"].get("recall"), 4), fmt(s["hnswlib"].get("qps"), 0),
            fmt(s["faiss"].get("recall"), 4), fmt(s["faiss"].get("qps"), 0),
            ratio(s["veclog"].get("qps"), s["hnswlib"].get("qps")),
            ratio(s["veclog"].get("qps"), s["faiss"].get("qps"))))
    out.append("")
    out.append("| filter (ef 64) | veclog recall | veclog QPS | hnswlib | faiss recall | faiss QPS | QPS veclog/faiss |")
    out.append("| ---: | ---: | ---: | --- | ---: | ---: | ---: |")
    for pct in (1, 10, 50):
        f = {e: get(n, d, e, "filter", pct=pct) or {} for e in engines}
        out.append("| %d%% | %s | %s | %s | %s | %s | %s |" % (
            pct, fmt(f["veclog"].get("recall"), 4), fmt(f["veclog"].get("qps"), 0),
            "n/a (no filter in 0.6.2)" if f["hnswlib"].get("qps") is None else fmt(f["hnswlib"].get("qps"), 0),
            fmt(f["faiss"].get("recall"), 4), fmt(f["faiss"].get("qps"), 0),
            ratio(f["veclog"].get("qps"), f["faiss"].get("qps"))))
    out.append("")
print("\n".join(out))
EOF
)

printf '%s\n' "$table"
if [ -n "$out_md" ]; then
    {
        echo "# HNSW index benchmark"
        echo
        echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "- machine: $machine"
        echo "- commit: $commit"
        echo "- command: \`$cmd\`"
        echo "- peers: $versions (Debian packages, /usr/bin/python3)"
        echo "- data: seeded clustered float32 (100 Gaussian centres with sd 3 per coordinate, unit"
        echo "  Gaussian noise), queries drawn the same way; ground truth by exact search in C"
        echo
        printf '%s\n' "$table"
        cat <<'EOF'
How it is measured.  Builds use the stated number of threads (hnswlib:
add_items num_threads, faiss: OpenMP threads, veclog: hnsw_build).  Searches
are single-threaded: veclog calls hnsw_search once per query in C; hnswlib
(knn_query with num_threads=1) and faiss (search with one OpenMP thread) get
all queries in one batch call, so their per-query loop is also native code.
Each ef runs all queries repeatedly for at least 0.3 s.  Recall@10 is the
fraction of the exact top-10 found.  Memory is the growth of the process's
resident set over the build (hnswlib allocates max_elements = n up front).
Filters: a fixed pseudo-random subset of the points; veclog passes an
accept callback, faiss an IDSelectorBitmap through SearchParametersHNSW;
the Debian hnswlib (0.6.2) has no filter parameter.  veclog keeps exploring
until it holds ef accepted points, so at 1% it visits most of the graph
(slow, exact); faiss stops early (fast, low recall) - the caller's planner
uses exact search for such selective filters.  veclog's save includes
fsync of the file and its directory (hnswlib's and faiss's do not sync), and
its open verifies every checksum and link (the whole file is read once);
"open (mmap)" for veclog maps the file read-only (a sealed index), for
faiss it is read_index with IO_FLAG_MMAP.
EOF
    } >"$out_md"
    say "hnsw_bench: wrote $out_md"
fi
