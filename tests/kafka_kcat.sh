#!/usr/bin/env bash
# kafka_kcat.sh - Kafka ingest through the real binary, driven by kcat:
# `veclog broker` in one process, `veclog serve` consuming from it, points
# produced with kcat and read back over the REST API, dead letters read
# back with kcat, then a restart of serve that must resume right after what
# the store holds, and dead letters redriven once their cause is fixed
# (re-produced by the CLI, re-applied over HTTP and by the CLI).  Prints "kcat: N passed, N failed" (scripts/run-tests.sh
# counts it) and exits non-zero on any failure.
#
#   VECLOG_BIN=bin/veclog tests/kafka_kcat.sh
set -u
BIN=${VECLOG_BIN:-bin/veclog}
passed=0
failed=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/veclog-kcat-XXXXXX")
broker_pid=
serve_pid=

cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); echo "ok   $1"; }
nok() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }
check() { # name, got, want
    if [ "$2" = "$3" ]; then ok "$1"; else nok "$1" "got '$2', want '$3'"; fi
}

if ! command -v kcat >/dev/null || ! command -v curl >/dev/null; then
    echo "kcat and curl are needed"
    echo "kcat: 0 passed, 1 failed"
    exit 1
fi

# A free port: bind to 0 and read what the kernel picked.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
api="http://127.0.0.1:$port"

"$BIN" broker >"$tmp/broker.out" 2>"$tmp/broker.log" &
broker_pid=$!
for _ in $(seq 100); do grep -q bootstrap.servers "$tmp/broker.out" && break; sleep 0.05; done
bs=$(sed -n 's/^bootstrap.servers=//p' "$tmp/broker.out")
[ -n "$bs" ] || { echo "no broker"; echo "kcat: 0 passed, 1 failed"; exit 1; }

serve() {
    VECLOG__STORAGE__STORAGE_PATH="$tmp/storage" VECLOG__SERVICE__HTTP_PORT=$port \
    VECLOG__SERVICE__HOST=127.0.0.1 VECLOG__KAFKA__BROKERS="$bs" \
    VECLOG__KAFKA__TOPICS=events VECLOG__DLQ__TOPIC=events-dlq \
    VECLOG__KAFKA__BATCH_TIMEOUT_MS=20 \
    VECLOG__KAFKA__PROPERTIES__SESSION_TIMEOUT_MS=4000 \
    VECLOG__KAFKA__PROPERTIES__HEARTBEAT_INTERVAL_MS=1000 \
        "$BIN" serve >>"$tmp/$1.log" 2>&1 &
    serve_pid=$!
    for _ in $(seq 200); do curl -sf "$api/readyz" >/dev/null 2>&1 && return 0; sleep 0.05; done
    return 1
}

stop_serve() {
    kill -TERM "$serve_pid"
    wait "$serve_pid"
    local rc=$?
    serve_pid=
    return $rc
}

count() {
    curl -s -X POST "$api/collections/c/points/count" -H 'Content-Type: application/json' \
        -d '{"exact": true}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["count"])'
}

wait_count() { # want
    for _ in $(seq 200); do [ "$(count)" = "$1" ] && return 0; sleep 0.05; done
    return 1
}

payload() { # id
    curl -s "$api/collections/c/points/$1" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(json.dumps(r["result"]["payload"], sort_keys=True) if r.get("result") else "absent")'
}

# Produce the topic before serve subscribes (the embedded broker creates
# topics on first use).  kcat: -K'|' splits key|value, -Z makes an empty
# value a null one (a tombstone).
printf '%s\n' '|{"collection_name":"nope","id":0,"vector":[0,0]}' |
    kcat -P -b "$bs" -t events -p 0 -K'|' -Z
serve serve1 || { nok "serve starts"; echo "kcat: $passed passed, $((failed + 1)) failed"; exit 1; }
ok "serve starts"
curl -s -X PUT "$api/collections/c" -H 'Content-Type: application/json' \
    -d '{"vectors": {"size": 2, "distance": "Dot"}}' >/dev/null

kcat -P -b "$bs" -t events -p 0 -K'|' -Z <<'EOF'
|{"collection_name":"c","id":1,"vector":[1,0],"payload":{"city":"Berlin"}}
|{"collection_name":"c","points":[{"id":2,"vector":[0,1]},{"id":3,"vector":[1,1]}]}
|{"collection_name":"c","op":"set_payload","payload":{"tag":"x"},"points":[2]}
|not json
{"collection_name":"c","id":3}|
|{"collection_name":"c","id":9,"vector":[1,2,3]}
|{"collection_name":"c","id":4,"vector":[4,4],"version":2,"payload":{"v":2}}
|{"collection_name":"c","id":4,"vector":[4,4],"version":1,"payload":{"v":1}}
EOF
# message 0 names a collection that does not exist: dead-lettered
if wait_count 3; then ok "points applied"; else nok "points applied" "count $(count)"; fi
check "sink-connector point" "$(payload 1)" '{"city": "Berlin"}'
check "envelope set_payload" "$(payload 2)" '{"tag": "x"}'
check "tombstone deletes" "$(payload 3)" "absent"
check "producer version wins" "$(payload 4)" '{"v": 2}'

dead_letters() { kcat -C -b "$bs" -t events-dlq -e -q -f '%o %h\n' 2>/dev/null; }
for _ in $(seq 100); do
    dead=$(dead_letters)
    [ "$(echo "$dead" | grep -c .)" -ge 3 ] && break
    sleep 0.1
done
check "three dead letters" "$(echo "$dead" | grep -c .)" 3
check "unknown collection dead-lettered" \
    "$(echo "$dead" | grep -c '__connect.errors.offset=0,.*__connect.errors.exception.class.name=veclog.error.not_found')" 1
check "invalid JSON dead-lettered" \
    "$(echo "$dead" | grep -c '__connect.errors.offset=4,.*__connect.errors.stage=VALUE_CONVERTER')" 1
check "wrong dimension dead-lettered" \
    "$(echo "$dead" | grep -c '__connect.errors.offset=6,.*__connect.errors.stage=TASK_PUT')" 1

if stop_serve; then ok "SIGTERM: exit 0"; else nok "SIGTERM: exit 0"; fi
check "stopped cleanly" "$(grep -c 'stopped cleanly' "$tmp/serve1.log")" 1

# Restart: the partition resumes after the last stored offset (8), not
# from the beginning, and nothing is dead-lettered again.
serve serve2 && ok "serve restarts" || nok "serve restarts"
printf '%s\n' '|{"collection_name":"c","id":5,"vector":[5,5]}' | kcat -P -b "$bs" -t events -p 0 -K'|' -Z
if wait_count 4; then ok "new message applied after restart"; else nok "new message applied after restart"; fi
check "resumed at offset 9" "$(grep -o 'assigned .*events\[0\]@[0-9a-z]*' "$tmp/serve2.log" | grep -o 'events\[0\]@[0-9a-z]*')" \
    "events[0]@9"
check "no dead letter repeated" "$(dead_letters | grep -c .)" 3

# Fix the cause, then redrive.  Re-produce (the CLI): dead letter 0:0
# named the missing collection "nope"; once it exists the message goes
# back to events[0] and ingest applies it.
ccount() { # collection
    curl -s -X POST "$api/collections/$1/points/count" -H 'Content-Type: application/json' \
        -d '{"exact": true}' | python3 -c 'import json,sys; print(json.load(sys.stdin).get("result",{}).get("count","none"))'
}
wait_ccount() { # collection, want
    for _ in $(seq 200); do [ "$(ccount "$1")" = "$2" ] && return 0; sleep 0.05; done
    return 1
}
# The dead-letter topic has several partitions: find a dead letter by the
# offset of its original message (GET /dlq).
dlq_ref() { # original offset
    curl -s "$api/dlq" | python3 -c '
import json, sys
for e in json.load(sys.stdin)["result"]["dead_letters"]:
    if e["original"]["offset"] == int(sys.argv[1]):
        print("%d:%d" % (e["partition"], e["offset"]))' "$1"
}
curl -s -X PUT "$api/collections/nope" -H 'Content-Type: application/json' \
    -d '{"vectors": {"size": 2, "distance": "Dot"}}' >/dev/null
ref0=$(dlq_ref 0)
ref6=$(dlq_ref 6)
VECLOG__DLQ__TOPIC=events-dlq "$BIN" dlq redrive "$ref0" --brokers "$bs" >"$tmp/redrive.out" 2>&1
check "dlq redrive (re-produce) exits 0" "$?" 0
if wait_ccount nope 1; then ok "re-produced dead letter applied"; else nok "re-produced dead letter applied" "$(cat "$tmp/redrive.out")"; fi

# Re-apply (HTTP, mode apply): a message for "late" is dead-lettered
# (dead letter 0:3), "late" is created, and the server writes it itself.
printf '%s\n' '|{"collection_name":"late","id":7,"vector":[1,1]}' | kcat -P -b "$bs" -t events -p 0 -K'|' -Z
for _ in $(seq 100); do [ "$(dead_letters | grep -c .)" -ge 4 ] && break; sleep 0.1; done
check "unknown collection dead-lettered again" "$(dead_letters | grep -c .)" 4
curl -s -X PUT "$api/collections/late" -H 'Content-Type: application/json' \
    -d '{"vectors": {"size": 2, "distance": "Dot"}}' >/dev/null
ref11=$(dlq_ref 11)
applied=$(curl -s -X POST "$api/dlq/redrive" -H 'Content-Type: application/json' \
    -d "{\"records\": [\"$ref11\"], \"mode\": \"apply\"}" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["result"]; print(r["mode"], r["failed"], r["redriven"][0]["status"])')
check "POST /dlq/redrive mode apply" "$applied" "apply 0 applied"
check "re-applied point visible" "$(ccount late)" 1
check "re-apply produced nothing" "$(dead_letters | grep -c .)" 4
if stop_serve; then ok "second SIGTERM: exit 0"; else nok "second SIGTERM: exit 0"; fi

# With the server stopped the CLI re-applies through the store itself.
VECLOG__STORAGE__STORAGE_PATH="$tmp/storage" VECLOG__DLQ__TOPIC=events-dlq \
    "$BIN" dlq redrive "$ref6" --apply --brokers "$bs" >"$tmp/apply.out" 2>&1
check "dlq redrive --apply reports the refusal" \
    "$(grep -c "apply $ref6 (from events\[0\]@6): .*dimension" "$tmp/apply.out")" 1

if [ "$failed" -gt 0 ]; then
    echo "--- serve logs"
    cat "$tmp/serve1.log" "$tmp/serve2.log"
fi
echo "kcat: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
