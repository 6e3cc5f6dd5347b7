#!/usr/bin/env bash
# Collection-level benchmark: the whole path a Qdrant request takes in
# veclog (catalog, WAL + RocksDB, the background optimizer building HNSW
# segments, the planner, filters, payload indexes), on the same seeded
# clustered data as a raw hnswlib index for reference.  bench/hnsw_bench.sh
# measures the index alone; this measures what the collection adds.
#
#   bench/coll_bench.sh                      # n = 200000, d = 128, ~1-2 min
#   BENCH_N=1000000 bench/coll_bench.sh      # the 1M figures, ~10 min
#
# Steps (bench/coll_bench.c explains each measurement):
# 1. `coll_bench` generates the data (100 Gaussian centres, unit noise),
#    brute-force ground truth, and writes them as hnsw_bench's files;
#    creates a collection through catalog_create (Euclid, m 16,
#    ef_construct 100, indexing_threshold BENCH_INDEXING_THRESHOLD_KB),
#    upserts in batches of 1000 through coll_write (WAL sync "always", the
#    default), waits for the optimizer to index every point, measures
#    memory and disk, restarts the catalog (ready = first search answered;
#    fails if a graph is rebuilt), sweeps hnsw_ef single-threaded, then
#    runs filters g < 1, 10, 50 (1%, 10%, 50%) without and with a payload
#    index on "g";
# 2. bench/hnsw_peer.py builds hnswlib (same M, ef_construction, threads)
#    on the same files and sweeps the same ef values;
# 3. prints the tables and writes them into BENCH_OUT as the section for
#    this n, keeping the sections of other n (so a default run and a 1M
#    run both stay in the file).
#
# Environment (defaults): BENCH_N (200000), BENCH_DIM (128), BENCH_QUERIES
# (1000), BENCH_EXACT_QUERIES (200: exact searches are slow, a prefix of
# the queries is enough for their rate), BENCH_EFS ("16 32 48 64 128 256 512": on
# this data hnswlib needs ef 256-512 for recall 0.95 at 1M),
# BENCH_THREADS (2: hnswlib's build threads; the optimizer uses the
# collection default max_indexing_threads, also 2), BENCH_SEED (7),
# BENCH_INDEXING_THRESHOLD_KB (1: index every point; Qdrant's default
# 10000 leaves a tail of up to 20000 points at d 128 to the exact scan),
# BENCH_INDEX_TIMEOUT (3600 s), BENCH_OUT (docs/bench-coll.md; empty: no
# file), BENCH_SKIP_BUILD=1 (use the existing library), BENCH_KEEP=1 (keep
# the data directory), BUILD (make's build directory), TMPDIR.
#
# Disk: the data directory holds the collection (~1.3 KB/point) and the
# vectors twice more for the peer (~1 KB/point): ~2.5 GB at 1M.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${BUILD:-build}
lib=$build/libveclog.a
n=${BENCH_N:-200000}
d=${BENCH_DIM:-128}
nq=${BENCH_QUERIES:-1000}
nexact=${BENCH_EXACT_QUERIES:-200}
efs=${BENCH_EFS:-16 32 48 64 128 256 512}
threads=${BENCH_THREADS:-2}
seed=${BENCH_SEED:-7}
thr_kb=${BENCH_INDEXING_THRESHOLD_KB:-1}
out_md=${BENCH_OUT-docs/bench-coll.md}
py=/usr/bin/python3

say() { printf '%s\n' "$*" >&2; }

cmd=""
for v in BENCH_N BENCH_DIM BENCH_QUERIES BENCH_EXACT_QUERIES BENCH_EFS BENCH_THREADS BENCH_SEED \
         BENCH_INDEXING_THRESHOLD_KB; do
    [ -n "${!v+x}" ] && cmd+="$v=$(printf %q "${!v}") "
done
cmd+="bench/coll_bench.sh"

# The peer: Debian's hnswlib, as bench/hnsw_bench.sh installs it.
for p in python3-hnswlib python3-numpy; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        say "coll_bench: $p is missing (bench/hnsw_bench.sh installs it)"
        exit 1
    fi
done

[ -n "${BENCH_SKIP_BUILD:-}" ] || make --no-print-directory "$lib" >&2
mkdir -p "$build/bench"
bin=$build/bench/coll_bench
cc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -pthread -I. bench/coll_bench.c "$lib" -o "$bin" \
    -lrocksdb -lrdkafka -lcjson -levent -levent_pthreads -lyaml -lcrypto -lpthread -lm

tmp=$(mktemp -d "${TMPDIR:-/tmp}/coll-bench.XXXXXX")
cleanup() { [ -n "${BENCH_KEEP:-}" ] && say "coll_bench: kept $tmp" || rm -rf "$tmp"; }
trap cleanup EXIT

load0=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$(date +%s)
results=$tmp/results.jsonl
say "coll_bench: n=$n d=$d: veclog collection"
"$bin" "$tmp" "$n" "$d" "$nq" "$seed" "$nexact" "$thr_kb" $efs | sed 's/^{/{"engine":"veclog",/' >"$results"
rm -rf "$tmp/storage"
say "coll_bench: n=$n d=$d: hnswlib"
loadp=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_PEERS=hnswlib "$py" bench/hnsw_peer.py "$tmp" "$threads" $efs >>"$results"
load1=$(cut -d' ' -f1-3 /proc/loadavg)
secs=$(( $(date +%s) - t0 ))

machine="$(nproc) cores (nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(uname -sr)"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
[ -z "$(git status --porcelain 2>/dev/null)" ] || commit+=" (with uncommitted changes)"
hv=$(dpkg-query -W -f='${Version}' python3-hnswlib)

section=$("$py" - "$results" <<EOF
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
n, d, nq, nexact, thr = $n, $d, $nq, $nexact, $thr_kb

def one(eng, what, **kw):
    for r in rows:
        if r.get("engine") == eng and r["what"] == what and all(r.get(k) == v for k, v in kw.items()):
            return r
    return {}

def f(x, nd=1):
    return "n/a" if x is None else (("%." + str(nd) + "f") % x if isinstance(x, float) else str(x))

def ratio(a, b):
    return "%.2f" % (a / b) if a is not None and b else "n/a"

def at95(eng):
    s = sorted((r for r in rows if r.get("engine") == eng and r["what"] == "search"
                and not r.get("exact")), key=lambda r: r["ef"])
    return next((r for r in s if r["recall"] >= 0.95), {})

def path(r):
    if not r:
        return "n/a"
    g = "graph" if r["graph_per_query"] >= 0.99 else "exact scan" if r["graph_per_query"] < 0.01 else "mixed"
    return g + (" (index candidates)" if r["index_reads_per_query"] >= 0.99 else "")

L, ld, mem, h = [], one("veclog", "load"), one("veclog", "memory"), one("hnswlib", "build")
L.append("## n = %d, d = %d (Euclid, m 16, ef_construct 100, %d queries, k 10)\n" % (n, d, nq))
L.append("- date: $(date -u '+%Y-%m-%d %H:%M UTC'); run time ${secs} s")
L.append("- machine: $machine; load average $load0 at start, $loadp before hnswlib, $load1 at end")
L.append("- commit: $commit")
L.append("- command: \`$cmd\`")
L.append("- collection: indexing_threshold %d KB, WAL sync always, batches of 1000; peer hnswlib $hv, $threads build threads\n" % thr)
L.append("| load and index | veclog collection | hnswlib | veclog/hnswlib |")
L.append("| --- | ---: | ---: | ---: |")
L.append("| ingest points/s (durable, coll_write) | %s | | |" % f(ld.get("ingest_points_per_s")))
L.append("| load s | %s | | |" % f(ld.get("ingest_s"), 2))
L.append("| fully indexed, s after the load | %s | | |" % f(ld.get("indexed_after_load_s"), 2))
L.append("| fully indexed, s from the first write / hnswlib build s | %s | %s | %s |" % (
    f(ld.get("indexed_total_s"), 2), f(h.get("seconds"), 2),
    ratio(ld.get("indexed_total_s"), h.get("seconds"))))
L.append("| build points/s (n / that time) | %s | %s | %s |" % (
    f(ld.get("build_points_per_s")), f(h.get("points_per_s")),
    ratio(ld.get("build_points_per_s"), h.get("points_per_s"))))
L.append("| other processes' CPU during load and index, cores | %s | | |" % f(ld.get("other_cores"), 2))
L.append("| graphs built (merges included) / segments at the end | %s / %s | 1 / 1 | |" % (
    ld.get("index_builds"), ld.get("segments")))
L.append("| RSS growth bytes/point (load to indexed) | %s | %s | %s |" % (
    f(mem.get("rss_bytes_per_point")), f(h.get("rss_bytes_per_point")),
    ratio(mem.get("rss_bytes_per_point"), h.get("rss_bytes_per_point"))))
for when, label in (("indexed", "disk bytes/point when indexed"), ("closed", "disk bytes/point after close (checkpointed)")):
    dk = one("veclog", "disk", when=when)
    L.append("| %s (wal + db + segments) | %s (%s + %s + %s) | | |" % (label, f(dk.get("bytes_per_point")),
             f(dk.get("wal"), 0), f(dk.get("db"), 0), f(dk.get("segments"), 0)))
rs = one("veclog", "restart")
L.append("| close s (checkpoint) | %s | | |" % f(rs.get("close_s"), 3))
L.append("| restart to ready s (catalog_open + first search) | %s | | |" % f(rs.get("ready_s"), 3))
L.append("| graphs built at reopen (must be 0) | %s | | |" % rs.get("index_builds_after_open"))
L.append("")
L.append("| ef | recall@10 | QPS (1 thread) | other cores busy | hnswlib recall | hnswlib QPS | QPS veclog/hnswlib |")
L.append("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for r in sorted((r for r in rows if r.get("engine") == "veclog" and r["what"] == "search" and not r["exact"]), key=lambda r: r["ef"]):
    p = one("hnswlib", "search", ef=r["ef"])
    L.append("| %d | %.4f | %.0f | %.2f | %s | %s | %s |" % (r["ef"], r["recall"], r["qps"], r["other_cores"], f(p.get("recall"), 4),
             f(p.get("qps"), 0), ratio(r["qps"], p.get("qps"))))
ex = one("veclog", "search", exact=True)
L.append("| exact (%d queries) | %.4f | %.1f | %.2f | | | |" % (ex["queries"], ex["recall"], ex["qps"], ex["other_cores"]))
a, b = at95("veclog"), at95("hnswlib")
def ef95(r):
    return "ef %d: %.4f" % (r["ef"], r["recall"]) if r else "none in the sweep"
L.append("| **QPS at recall >= 0.95** (smallest such ef) | %s | %s | | %s | %s | **%s** |\n" % (
    ef95(a), f(a.get("qps"), 0), ef95(b), f(b.get("qps"), 0), ratio(a.get("qps"), b.get("qps"))))
pi = one("veclog", "payload_index")
L.append("Filters \`g < P\` (a range condition on an integer payload; P%% of the points). "
         "Payload index on \"g\" (integer, lookup + range) built in %s s.\n" % f(pi.get("seconds"), 3))
fef = (one("veclog", "filter", pct=1, payload_index=False, exact=False) or {}).get("ef")
L.append("Graph runs at ef %s, the smallest swept ef whose unfiltered recall reached 0.95.\n" % fef)
L.append("| filter | payload index | planner path | recall@10 | QPS | other cores busy | exact recall | exact QPS |")
L.append("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |")
for pct in (1, 10, 50):
    for idx in (False, True):
        g = one("veclog", "filter", pct=pct, payload_index=idx, exact=False)
        e = one("veclog", "filter", pct=pct, payload_index=idx, exact=True)
        L.append("| %d%% | %s | %s | %s | %s | %s | %s | %s |" % (pct, "yes" if idx else "no", path(g),
                 f(g.get("recall"), 4), f(g.get("qps"), 0), f(g.get("other_cores"), 2),
                 f(e.get("recall"), 4), f(e.get("qps"), 0)))
L.append("")
print("\n".join(L))
EOF
)
printf '%s\n' "$section"

if [ -n "$out_md" ]; then
    # One section per n: replace this n's, keep the others, largest n first.
    printf '%s\n' "$section" >"$tmp/section.md"
    "$py" - "$out_md" "$n" "$tmp/section.md" <<'EOF'
import os, re, sys
path, n, new = sys.argv[1], int(sys.argv[2]), open(sys.argv[3]).read().strip() + "\n"
sections = {}
if os.path.exists(path):
    text = open(path).read()
    for m in re.finditer(r"^## n = (\d+),.*?(?=^## |^## How to read this|\Z)", text, re.S | re.M):
        sections[int(m.group(1))] = m.group(0).strip() + "\n"
sections[n] = new
HEAD = """# Collection benchmark

What a search costs through the whole collection path (catalog, WAL +
RocksDB, HNSW segments built by the background optimizer, planner,
filters, payload indexes), beside a raw hnswlib index on the same data.
`bench/coll_bench.sh` writes this file, one section per n
(`BENCH_N=1000000 bench/coll_bench.sh` adds or refreshes the 1M section
and keeps the others).  Data: seeded clustered float32, d 128 (100
Gaussian centres with sd 3 per coordinate, unit noise); point i has id i
and payload {"g": i % 100, "t": "tenant-<i % 10>"}; ground truth by brute
force in C, not through the store.  bench/hnsw_bench.sh (docs/bench-hnsw.md)
measures veclog's HNSW index alone.
"""
TAIL = """## How to read this

- **Ingest** is coll_write with the server's default durability (WAL
  fsync per batch of 1000, group commit), then RocksDB; hnswlib has no
  ingest step, so there is no ratio.  The optimizer runs concurrently and
  takes cores from it.
- **Build rate** is n divided by the time from the first write until every
  point is served by a segment (indexed_vectors_count = n); hnswlib's is
  one add_items call.  The optimizer builds a segment from whatever is
  unindexed when it wakes (at least indexing_threshold), so a fast load
  gives several segments, each a separate graph build; past
  default_segment_number (2 here) the two smallest are merged (rebuilt),
  which counts too, and the bench waits for that before searching.  The split depends on
  timing, so the number of segments, and with it recall and QPS, varies a
  little between runs.
- **Memory** is the growth of VmRSS from before the first write to fully
  indexed: the vectors and payloads in memory (the in-memory image that
  searches read), RocksDB memtables and block cache, the WAL buffers and
  the graphs.  hnswlib's is its graph plus one copy of the vectors, so the
  collection is expected to be higher (it keeps its own copy of every
  vector and payload besides the graphs).
- **Disk** is allocated bytes under the storage path: the WAL (the log
  since the last checkpoint; truncated at close), RocksDB (vectors and
  payloads) and the segment files (graph with its own copy of the vectors,
  plus the ids).  Every vector is therefore on disk twice once indexed.
- **Restart to ready** is catalog_open (every point loaded from RocksDB
  into the in-memory image, WAL tail replayed, every segment file loaded
  and each node checked against memory) plus the first search.  No graph
  may be built at open; the bench fails if one is.
- **Other cores busy** is the machine's busy CPU time minus this
  process's, over the run, per second (/proc/stat): other processes on a
  shared machine.  Rates measured while it is high (above ~0.5 on 2 cores)
  are low by up to that share; hnswlib ran after the collection, so
  compare the load averages in the header.
- **Search** goes through coll_search, single-threaded, k 10, no payload or
  vector returned.  Unlike the raw index it (1) searches every segment
  with the given ef and merges their results, so with S segments it does
  roughly S times the graph work of one graph of n points; (2) scans the
  unindexed points exactly (kept as a set: here none); (3) with a filter,
  checks every visited node against the live points and the filter; (4)
  re-scores each graph hit from the in-memory vectors and builds JSON
  results.  hnswlib searches one graph with no such checks.
- **Filters**: the planner answers exactly when the filter's estimated
  cardinality (the payload index's candidates, or a 512-point sample) is at
  most full_scan_threshold (10000 KB: 20000 vectors at d 128), else it
  searches the graphs with the filter checked on every visited node.  Exact
  recall is 1 by construction; the exact column forces exact=true.  "index
  candidates" means a payload index produced the candidate list (the
  planner evaluates the full filter only on those); with a graph search
  that list is built and then not used for the graph, so a payload index
  can make a broad filter slower.
"""
with open(path, "w") as f:
    f.write(HEAD + "\n")
    for k in sorted(sections, reverse=True):
        f.write(sections[k] + "\n")
    f.write(TAIL)
EOF
    say "coll_bench: wrote $out_md"
fi
