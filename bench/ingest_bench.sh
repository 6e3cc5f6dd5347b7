#!/usr/bin/env bash
# Kafka ingest benchmark: how fast `veclog serve` drains a filled topic into
# durable, searchable points, against kcat reading the same topic, and the
# produce-to-visible latency at a fixed producer rate.
#
#   bench/ingest_bench.sh
#
# 1. Builds bin/veclog (make), bench/gen_messages (libc only) and
#    bench/produce_latency (librdkafka + pthreads) into $BUILD/bench.
# 2. Starts `bin/veclog broker` (the embedded development broker) once.
# 3. For each dimension in BENCH_DIMS (128 and 768):
#    a. fills topic ingest-d<D> (1 partition) with N seeded sink-connector
#       points ({"collection_name","id","vector","payload"}) with kcat -P;
#    b. kcat: times `kcat -C -o beginning -e` reading the whole topic
#       (payloads counted through wc -l) -> messages/s;
#    c. veclog: creates collection "bench" (D, Cosine) on a fresh storage
#       with a `serve` consuming only an empty topic, stops it, then times
#       from the start of `serve` consuming ingest-d<D` (a new consumer
#       group, auto_offset_reset earliest, default batch settings,
#       sync_mode always) until GET /ingest/partitions shows applied = N and
#       lag 0 and an exact count returns N -> messages/s end to end; also
#       from /readyz answering (startup excluded) and the server's CPU;
#    d. latency: with that server still running, bench/produce_latency
#       produces BENCH_RATE msg/s for BENCH_LAT_SECONDS s to the same topic
#       and, for each message, times from rd_kafka_producev to the return of
#       GET /collections/bench/points/ID?wait_offsets=TOPIC:0:OFFSET (a 200
#       carrying the point) -> p50 / p99.
# 4. Prints a table and ratios, and writes them to docs/bench-ingest.md
#    (BENCH_OUT; empty: no file) with the date, the machine and the command.
#
# Environment (defaults): BENCH_INGEST_N ("3000 500": messages for each
# dimension, in order; one number is used for all.  The embedded broker
# (librdkafka's mock cluster) keeps only about the last 4-5 MB of a
# partition: 20000 x d=128 or 5000 x d=768 do not fit, and the script
# stops if kcat does not read back every message), BENCH_DIMS ("128 768"),
# BENCH_RATE (100 msg/s), BENCH_LAT_SECONDS (10), BENCH_OUT
# (docs/bench-ingest.md), BENCH_SKIP_BUILD=1, BENCH_KEEP=1 (keep the
# temporary directory), BUILD / BIN (make's build and binary directories).
#
# About a minute with the defaults.  Everything (broker, kcat, server,
# producer) shares the machine.  Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

ns=(${BENCH_INGEST_N:-3000 500})
dims=(${BENCH_DIMS:-128 768})
rate=${BENCH_RATE:-100}
lat_secs=${BENCH_LAT_SECONDS:-10}
out_md=${BENCH_OUT-docs/bench-ingest.md}
build=${BUILD:-build}
bindir=${BIN:-bin}
coll=bench

cmd=""
for v in BENCH_INGEST_N BENCH_DIMS BENCH_RATE BENCH_LAT_SECONDS; do
    [ -n "${!v+x}" ] && cmd+="$v=$(printf %q "${!v}") "
done
if [ -n "${BENCH_VIA_MAKE:-}" ]; then cmd+="make bench"; else cmd+="bench/ingest_bench.sh"; fi

say() { printf '%s\n' "$*" >&2; }
die() { say "ingest_bench: $*"; exit 1; }

# ---- cleanup -------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/veclog-ingest-bench.XXXXXX")
pid=""
broker_pid=""
stop_pid() { # pid
    local p=$1
    [ -n "$p" ] || return 0
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}
stop_server() { stop_pid "$pid"; pid=""; }
cleanup() {
    local rc=$?
    stop_server
    stop_pid "$broker_pid"
    broker_pid=""
    if [ -n "${BENCH_KEEP:-}" ]; then say "ingest_bench: kept $tmp"; else rm -rf "$tmp"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- tools and build -----------------------------------------------------
for t in kcat curl; do command -v $t >/dev/null 2>&1 || die "$t is required"; done
makevar() {
    make -s --no-print-directory BUILD="$build" BIN="$bindir" -f Makefile \
        -f <(printf 'bench-print-%%:\n\t@echo $($*)\n') "bench-print-$1"
}
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    make --no-print-directory BUILD="$build" BIN="$bindir" "$bindir/veclog" >&2 || die "make failed"
fi
cc_=$(makevar CC)
cflags=$(makevar CFLAGS)
ldflags=$(makevar LDFLAGS)
mkdir -p "$build/bench"
# shellcheck disable=SC2086
build_tool() { # name, then link arguments
    local name=$1
    shift
    if [ -n "${BENCH_SKIP_BUILD:-}" ] && [ -x "$build/bench/$name" ]; then return 0; fi
    if [ ! -x "$build/bench/$name" ] || [ "bench/$name.c" -nt "$build/bench/$name" ]; then
        say "ingest_bench: building $build/bench/$name"
        $cc_ $cflags -c "bench/$name.c" -o "$build/bench/$name.o"
        $cc_ $ldflags "$build/bench/$name.o" "$@" -o "$build/bench/$name"
    fi
}
build_tool gen_messages
build_tool produce_latency -lrdkafka -lpthread
[ -x "$bindir/veclog" ] || die "$bindir/veclog is missing"

load0=$(cut -d' ' -f1-3 /proc/loadavg)
hz=$(getconf CLK_TCK)
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
per_s() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "n/a" }'; }
kids_cpu() { # after `times >"$tmp/times"` in this shell: CPU s of its reaped children
    awk 'NR == 2 { n = 0; for (f = 1; f <= 2; f++) { split($f, a, "m"); n += a[1] * 60 + a[2] } print n }' "$tmp/times"
}

# ---- broker --------------------------------------------------------------
"$bindir/veclog" broker >"$tmp/broker.out" 2>"$tmp/broker.log" &
broker_pid=$!
for _ in $(seq 100); do grep -q bootstrap.servers "$tmp/broker.out" && break; sleep 0.05; done
bs=$(sed -n 's/^bootstrap.servers=//p' "$tmp/broker.out")
[ -n "$bs" ] || { cat "$tmp/broker.log" >&2; die "the broker did not start"; }
say "ingest_bench: broker at $bs"

# ---- server --------------------------------------------------------------
port=""
extra_env=()
start_server() { # storage, topic, group, log
    local storage=$1 topic=$2 group=$3 log=$4
    for _ in $(seq 20); do
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        env VECLOG__SERVICE__HOST=127.0.0.1 VECLOG__SERVICE__HTTP_PORT="$port" \
            VECLOG__STORAGE__STORAGE_PATH="$storage" VECLOG__KAFKA__BROKERS="$bs" \
            VECLOG__KAFKA__TOPICS="$topic" VECLOG__KAFKA__GROUP_ID="$group" \
            VECLOG__DLQ__TOPIC=bench-dlq \
            VECLOG__KAFKA__PROPERTIES__SESSION_TIMEOUT_MS=4000 \
            VECLOG__KAFKA__PROPERTIES__HEARTBEAT_INTERVAL_MS=1000 \
            "${extra_env[@]}" "$bindir/veclog" serve >"$log" 2>&1 &
        pid=$!
        for _ in $(seq 300); do
            curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.02
        done
        if kill -0 "$pid" 2>/dev/null || ! grep -qi 'listen' "$log"; then
            cat "$log" >&2
            die "the server did not become ready"
        fi
        wait "$pid" 2>/dev/null || true   # the port was taken meanwhile: another
        pid=""
    done
    die "no free port found"
}
api() { # method, path, [curl args...]
    local m=$1 p=$2
    shift 2
    curl -sS -f -X "$m" "http://127.0.0.1:$port$p" -H 'Content-Type: application/json' "$@"
}
count() { api POST "/collections/$coll/points/count" -d '{"exact": true}' | grep -o '"count":[0-9]*' | grep -o '[0-9]*$'; }
# "applied lag" of partition 0 of a topic, from GET /ingest/partitions
part_state() { # topic
    api GET /ingest/partitions 2>/dev/null | python3 -c '
import json, sys
t = sys.argv[1]
r = json.load(sys.stdin).get("result", {})
ps = r.get("partitions", r) if isinstance(r, dict) else r
for p in ps:
    if p.get("topic") == t and p.get("partition") == 0:
        print(p.get("applied"), p.get("lag")); break
else:
    print("none none")' "$1"
}

# ---- runs ----------------------------------------------------------------
latrows=()
rows=()   # "dim n kcat_s kcat_rate kcat_cpu ready_s e2e_s e2e_rate drain_rate srv_cpu lat..."
idx=0
for d in "${dims[@]}"; do
    n=${ns[$idx]:-${ns[0]}}
    idx=$((idx + 1))
    topic=ingest-d$d
    say "ingest_bench: d=$d: producing $n messages to $topic"
    "$build/bench/gen_messages" -n "$n" -d "$d" -c "$coll" >"$tmp/msgs-$d.txt"
    bytes=$(stat -c %s "$tmp/msgs-$d.txt")
    kcat -P -b "$bs" -t "$topic" -p 0 -X queue.buffering.max.messages=1000000 \
        -X message.max.bytes=10000000 <"$tmp/msgs-$d.txt" || die "kcat -P failed"
    rm -f "$tmp/msgs-$d.txt"

    # (1) kcat alone
    times >"$tmp/times"
    c0=$(kids_cpu)
    t0=$(now)
    kcat -C -b "$bs" -t "$topic" -p 0 -o beginning -e -q >"$tmp/kcat-count" 2>/dev/null &
    wait $!
    t1=$(now)
    times >"$tmp/times"
    c1=$(kids_cpu)
    got=$(wc -l <"$tmp/kcat-count")
    rm -f "$tmp/kcat-count"
    [ "$got" -eq "$n" ] || die "kcat read $got messages from $topic, expected $n (the embedded broker keeps only ~4-5 MB per partition: lower BENCH_INGEST_N)"
    kcat_s=$(elapsed "$t0" "$t1")
    kcat_cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
    say "ingest_bench: d=$d: kcat -C -e read $n messages in ${kcat_s} s"

    # (2) veclog: collection created on a fresh storage by a server that
    # consumes only an empty topic, then a fresh start on the filled one.
    storage=$tmp/storage-$d
    start_server "$storage" "bench-idle" "bench-idle-$d" "$tmp/serve-setup-$d.log"
    api PUT "/collections/$coll" -d "{\"vectors\": {\"size\": $d, \"distance\": \"Cosine\"}}" >/dev/null ||
        die "create collection failed"
    stop_server
    t0=$(now)
    start_server "$storage" "$topic" "bench-$d" "$tmp/serve-$d.log"
    tr=$(now)
    done_=""
    for _ in $(seq 6000); do   # up to ~2 minutes
        read -r applied lag <<<"$(part_state "$topic")"
        if [ "$applied" = "$n" ] && [ "$lag" = 0 ] && [ "$(count)" = "$n" ]; then done_=1; break; fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.02
    done
    t1=$(now)
    [ -n "$done_" ] || { tail -20 "$tmp/serve-$d.log" >&2; die "d=$d: not ingested (applied=$applied lag=$lag)"; }
    srv_cpu=$(awk -v hz="$hz" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$pid/stat")
    e2e_s=$(elapsed "$t0" "$t1")
    # the consumer group join (the broker's initial rebalance delay) is part
    # of e2e; "drain" starts at the assignment logged by serve
    ta=$(sed -n "s/^\([^ ]*\) .*ingest: assigned .*$topic.*/\1/p" "$tmp/serve-$d.log" | head -1)
    [ -n "$ta" ] || die "d=$d: no assignment in the server log"
    ta=$(date -d "$ta" +%s.%N)
    drain_s=$(elapsed "$ta" "$t1")
    say "ingest_bench: d=$d: veclog ingested $n messages in ${e2e_s} s (${drain_s} s after the assignment)"
    hits=$(api POST "/collections/$coll/points/query" -d "{\"query\": $(
        head -c 0 /dev/null; python3 -c "print([0.1]*$d)"), \"limit\": 3}" | grep -o '"score"' | wc -l)
    [ "$hits" -eq 3 ] || die "d=$d: a query returned $hits hits"

    # (3) produce-to-visible latency on the same topic and server, with the
    # server's defaults, then restarted (same group and storage) with the
    # consumer's fetch.wait.max.ms lowered from librdkafka's 500 ms
    lats=()
    first=2000000000
    for tune in default fetch10; do
        if [ "$tune" = fetch10 ]; then
            stop_server
            extra_env=(VECLOG__KAFKA__PROPERTIES__FETCH_WAIT_MAX_MS=10)
            start_server "$storage" "$topic" "bench-$d" "$tmp/serve-$d-fetch10.log"
            extra_env=()
            for _ in $(seq 1000); do   # until assigned again (rejoin after session timeout)
                grep -q "ingest: assigned .*$topic" "$tmp/serve-$d-fetch10.log" && break
                sleep 0.02
            done
            first=3000000000
        fi
        say "ingest_bench: d=$d: latency ($tune), $rate msg/s for $lat_secs s"
        lat=$("$build/bench/produce_latency" -b "$bs" -t "$topic" -p "$port" -c "$coll" -d "$d" \
            -r "$rate" -s "$lat_secs" -i "$first" 2>"$tmp/lat-$d.log") ||
            { cat "$tmp/lat-$d.log" >&2; die "produce_latency failed"; }
        kv() { grep -o " $1=[0-9.]*" <<<"$lat" | cut -d= -f2; }
        lats+=("$d $tune $(kv n) $(kv rate) $(kv ack_p50_ms) $(kv p50_ms) $(kv p90_ms) $(kv p99_ms) $(kv max_ms)")
    done
    rows+=("$d $n $bytes $kcat_s $kcat_cpu $e2e_s $drain_s $srv_cpu")
    latrows+=("${lats[@]}")
    stop_server
    rm -rf "$storage"
done

# ---- report --------------------------------------------------------------
nproc_=$(nproc)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && commit+=" (with uncommitted changes)"
report=$tmp/report.md
{
    echo "# Kafka ingest benchmark"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $nproc_ cores (nproc), $cpu; $(uname -sr); load average at start $load0"
    echo "- commit: $commit"
    echo "- command: \`$cmd\`"
    echo "- broker: \`veclog broker\` (embedded development broker), 1 partition per topic; $(kcat -V 2>&1 | head -1)"
    echo "- messages: sink-connector points {\"collection_name\", \"id\", \"vector\": [D floats in [-1, 1]], \"payload\": {\"i\"}}, Cosine; server defaults (batch_size 1000, batch_timeout_ms 100, sync_mode always)"
    echo
    echo "## Draining a filled topic"
    echo
    echo "| d | messages | MB | kcat -C -e msg/s | veclog e2e msg/s | e2e / kcat | veclog drain msg/s | drain / kcat | kcat s | e2e s | drain s | kcat CPU s | serve CPU s |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for r in "${rows[@]}"; do
        set -- $r
        kr=$(per_s "$2" "$4") vr=$(per_s "$2" "$6") dr=$(per_s "$2" "$7")
        echo "| $1 | $2 | $(awk -v b="$3" 'BEGIN { printf "%.1f", b / 1e6 }') | $kr | $vr | $(ratio "$vr" "$kr") | $dr | $(ratio "$dr" "$kr") | $4 | $6 | $7 | $5 | $8 |"
    done
    echo
    echo "veclog e2e: from starting \`serve\` (fresh consumer group, collection already created) until"
    echo "\`GET /ingest/partitions\` shows applied = N, lag 0 and an exact count returns N (every"
    echo "message in the WAL with fsync and searchable), so it includes startup and the consumer"
    echo "group join (the broker's initial rebalance delay, about 3 s); \"drain\" starts at the"
    echo "assignment logged by \`serve\`.  kcat: \`kcat -C -o beginning -e -q\` on the same topic"
    echo "(its output to a file, lines counted).  CPU: user + system seconds of the process."
    echo
    echo "## Produce-to-visible latency"
    echo
    echo "| d | consumer | messages | producer msg/s | ack p50 ms | visible p50 ms | p90 ms | p99 ms | max ms |"
    echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for r in "${latrows[@]}"; do
        set -- $r
        t=$2
        [ "$t" = default ] && t="defaults" || t="fetch.wait.max.ms=10"
        echo "| $1 | $t | $3 | $4 | $5 | $6 | $7 | $8 | $9 |"
    done
    echo
    echo "Per message: from handing it to librdkafka (acks=all, linger.ms=0; open loop at a fixed"
    echo "rate) until \`GET /collections/$coll/points/ID?wait_offsets=TOPIC:0:OFFSET\` (sent as soon as"
    echo "the delivery report gives the offset, on a new connection) returns 200 with the point."
    echo "\"ack\" is the delivery report alone.  The server ran on the collection just filled;"
    echo "\"defaults\": the server as configured by default (veclog sets fetch.wait.max.ms 50,"
    echo "batch_timeout_ms 100); \"fetch.wait.max.ms=10\": restarted with"
    echo "VECLOG__KAFKA__PROPERTIES__FETCH_WAIT_MAX_MS=10."
} >"$report"
echo
cat "$report"
if [ -n "$out_md" ]; then
    cp "$report" "$out_md"
    say "ingest_bench: wrote $out_md"
fi
