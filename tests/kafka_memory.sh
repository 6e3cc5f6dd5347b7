#!/usr/bin/env bash
# kafka_memory.sh - backpressure: a producer that veclog cannot keep up
# with must not make veclog's memory grow.  `veclog broker` in one process,
# `veclog serve` in another (its RSS is what is measured), and kcat
# flooding a 4-partition topic with ~8 KB upserts of 64 points for
# FLOOD_SECONDS.  veclog applies a few thousand per second; the producer
# offers far more (the embedded broker keeps only the newest few MB per
# partition, so the consumer also meets offsets that are gone and must
# reset).  Checks: the producer offered many times more bytes than the
# RSS limit; serve's peak RSS stays under RSS_LIMIT_MB; afterwards the lag
# drains to 0 and the collection holds exactly the 64 points.  Prints
# "kafka-memory: N passed, N failed" (scripts/run-tests.sh counts it).
#
#   VECLOG_BIN=bin/veclog tests/kafka_memory.sh
set -u
BIN=${VECLOG_BIN:-bin/veclog}
FLOOD_SECONDS=${FLOOD_SECONDS:-15}
RSS_LIMIT_MB=${RSS_LIMIT_MB:-200}
passed=0
failed=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/veclog-mem-XXXXXX")
broker_pid=
serve_pid=

cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); echo "ok   $1"; }
nok() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }
finish() {
    [ "$failed" -gt 0 ] && { echo "--- serve log"; tail -40 "$tmp/serve.log"; }
    echo "kafka-memory: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
api="http://127.0.0.1:$port"

"$BIN" broker >"$tmp/broker.out" 2>"$tmp/broker.log" &
broker_pid=$!
for _ in $(seq 100); do grep -q bootstrap.servers "$tmp/broker.out" && break; sleep 0.05; done
bs=$(sed -n 's/^bootstrap.servers=//p' "$tmp/broker.out")
[ -n "$bs" ] || { nok "broker starts"; finish; }

# A small prefetch queue and batch: what bounds memory (docs/kafka.md,
# Backpressure and memory).
VECLOG__STORAGE__STORAGE_PATH="$tmp/storage" VECLOG__SERVICE__HTTP_PORT=$port \
VECLOG__SERVICE__HOST=127.0.0.1 VECLOG__KAFKA__BROKERS="$bs" VECLOG__KAFKA__TOPICS=flood \
VECLOG__KAFKA__BATCH_SIZE=200 VECLOG__KAFKA__AUTO_CREATE_COLLECTIONS=true \
VECLOG__KAFKA__PROPERTIES__QUEUED_MAX_MESSAGES_KBYTES=4096 \
    "$BIN" serve >"$tmp/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 200); do curl -sf "$api/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
curl -sf "$api/readyz" >/dev/null || { nok "serve starts"; finish; }
ok "serve starts"

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$serve_pid/status" 2>/dev/null || echo 0; }
base=$(rss_kb)

python3 -c '
import sys
blob = "x" * 8000
w = sys.stdout.write
i = 0
try:
    while True:
        w("{\"collection_name\":\"m\",\"id\":%d,\"vector\":[0.1,0.2,0.3,%d],\"payload\":{\"i\":%d,\"blob\":\"%s\"}}\n"
          % (i % 64, i % 7 + 1, i, blob))
        i += 1
except BrokenPipeError:
    pass
' 2>/dev/null | timeout "$FLOOD_SECONDS" kcat -P -b "$bs" -t flood -X linger.ms=20 \
    -X queue.buffering.max.messages=100000 2>/dev/null &
flood_pid=$!

peak=$base
while kill -0 "$flood_pid" 2>/dev/null; do
    r=$(rss_kb)
    [ "$r" -gt "$peak" ] && peak=$r
    sleep 0.2
done
wait "$flood_pid" 2>/dev/null

parts() { curl -s "$api/ingest/partitions"; }
offered=$(parts | python3 -c '
import json, sys
print(sum(p["high_watermark"] for p in json.load(sys.stdin)["result"]["partitions"]))')
echo "offered $offered messages (~$((offered * 8 / 1024)) MB) in ${FLOOD_SECONDS}s;" \
     "serve RSS $((base / 1024)) MB at start, peak $((peak / 1024)) MB"
if [ $((offered * 8 / 1024)) -ge $((4 * RSS_LIMIT_MB)) ]; then
    ok "producer offered > 4x the RSS limit"
else
    nok "producer offered > 4x the RSS limit" "only $offered messages"
fi
if [ $((peak / 1024)) -lt "$RSS_LIMIT_MB" ]; then
    ok "peak RSS under ${RSS_LIMIT_MB} MB"
else
    nok "peak RSS under ${RSS_LIMIT_MB} MB" "peak $((peak / 1024)) MB"
fi

lag=
for _ in $(seq 600); do
    lag=$(parts | python3 -c '
import json, sys
ps = json.load(sys.stdin)["result"]["partitions"]
print(sum(p["lag"] for p in ps) if ps and all(p["lag"] is not None for p in ps) else "unknown")')
    [ "$lag" = 0 ] && break
    sleep 0.1
done
if [ "$lag" = 0 ]; then ok "lag drains to 0"; else nok "lag drains to 0" "lag $lag"; fi
count=$(curl -s -X POST "$api/collections/m/points/count" -H 'Content-Type: application/json' \
    -d '{"exact": true}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["count"])')
if [ "$count" = 64 ]; then ok "64 points"; else nok "64 points" "count $count"; fi
kill -TERM "$serve_pid"
if wait "$serve_pid"; then ok "SIGTERM: exit 0"; else nok "SIGTERM: exit 0"; fi
serve_pid=
finish
