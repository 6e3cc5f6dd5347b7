#!/usr/bin/env bash
# kafka_exactly_once.sh - exactly-once ingest across kill -9: a producer
# (tests/kafka_eo_model.py driving kcat) keeps writing upserts, tombstones,
# delete and set_payload envelopes to a 4-partition topic on `veclog
# broker` (the embedded broker auto-creates topics with 4 partitions; the
# CLI cannot pick another count) while `veclog serve` is killed with
# SIGKILL at random moments and restarted on the same storage, RESTARTS
# times.  Checks:
#   - after every restart, each partition resumes (the "assigned" log line)
#     no earlier than one past the newest message the server visibly held
#     before the kill: nothing it held is read and applied again;
#   - once the producer is done, every point holds the model's final
#     payload (computed from the produced sequence), deleted points are
#     absent, the count matches;
#   - after a clean SIGTERM restart the server resumes exactly at the end
#     of every partition (its stored progress is the topic's end) and the
#     data are unchanged.
# Prints "kafka-eo: N passed, N failed"; exits non-zero on any failure.
#
#   VECLOG_BIN=bin/veclog tests/kafka_exactly_once.sh
# Environment: EO_RESTARTS (default 7), EO_MESSAGES (default 8000),
# EO_SEED (random kill moments; default random, printed).
set -u
cd "$(dirname "$0")/.."
BIN=${VECLOG_BIN:-bin/veclog}
MODEL=tests/kafka_eo_model.py
RESTARTS=${EO_RESTARTS:-7}
N=${EO_MESSAGES:-8000}
PARTS=4
TOPIC=eo
SEED=${EO_SEED:-$RANDOM}
RANDOM=$SEED
passed=0
failed=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/veclog-eo-XXXXXX")
broker_pid=
serve_pid=
prod_pid=

cleanup() {
    for p in $serve_pid $prod_pid $broker_pid; do
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# The whole script is bounded: a watchdog ends it after 115 s.
( trap 'kill $s 2>/dev/null; exit 0' TERM; sleep 115 & s=$!; wait $s
  echo "FAIL timed out after 115 s"; kill -TERM $$ ) 2>/dev/null &
watchdog=$!
trap 'kill $watchdog 2>/dev/null; cleanup' EXIT

ok() { passed=$((passed + 1)); echo "ok   $1"; }
nok() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }
finish() {
    if [ "$failed" -gt 0 ]; then
        for f in "$tmp"/serve*.log; do echo "--- $f (last 15 lines)"; tail -n 15 "$f"; done
    fi
    echo "kafka-eo: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

for c in kcat curl python3; do
    command -v $c >/dev/null || { nok "$c is needed"; finish; }
done
echo "seed $SEED, $N messages, $RESTARTS kills"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
api="http://127.0.0.1:$port"

"$BIN" broker >"$tmp/broker.out" 2>"$tmp/broker.log" &
broker_pid=$!
for _ in $(seq 100); do grep -q bootstrap.servers "$tmp/broker.out" && break; sleep 0.05; done
bs=$(sed -n 's/^bootstrap.servers=//p' "$tmp/broker.out")
[ -n "$bs" ] || { nok "broker starts"; finish; }

serve() { # log name
    VECLOG__STORAGE__STORAGE_PATH="$tmp/storage" VECLOG__SERVICE__HTTP_PORT=$port \
    VECLOG__SERVICE__HOST=127.0.0.1 VECLOG__KAFKA__BROKERS="$bs" \
    VECLOG__KAFKA__TOPICS=$TOPIC VECLOG__DLQ__TOPIC=$TOPIC-dlq \
    VECLOG__KAFKA__BATCH_SIZE=200 VECLOG__KAFKA__BATCH_TIMEOUT_MS=20 \
    VECLOG__KAFKA__PROPERTIES__SESSION_TIMEOUT_MS=3000 \
    VECLOG__KAFKA__PROPERTIES__HEARTBEAT_INTERVAL_MS=500 \
        "$BIN" serve >>"$tmp/$1.log" 2>&1 &
    serve_pid=$!
    for _ in $(seq 200); do curl -sf "$api/readyz" >/dev/null 2>&1 && return 0; sleep 0.05; done
    return 1
}

# "p off" lines from the log's "assigned" lines (the last one per partition)
assigned() { # log
    grep -o "assigned .*" "$1" | grep -o "$TOPIC\[[0-9]*\]@[0-9a-z]*" |
        sed -E 's/.*\[([0-9]+)\]@(.*)/\1 \2/' | awk '{a[$1]=$2} END {for (p in a) print p, a[p]}' | sort -n
}

wait_assigned() { # log, partitions
    for _ in $(seq 300); do
        [ "$(assigned "$1" | wc -l)" -ge "$2" ] && return 0
        sleep 0.05
    done
    return 1
}

# Every partition's resume offset >= the snapshot's minimum for it.
check_resume() { # log, snapshot file, what
    local bad=
    read -r -a mins <"$2"
    while read -r p off; do
        case $off in
            beginning) [ "${mins[$p]}" -eq 0 ] || bad+=" [$p]@beginning<${mins[$p]}" ;;
            *[!0-9]*) bad+=" [$p]@$off" ;;
            *) [ "$off" -ge "${mins[$p]}" ] || bad+=" [$p]@$off<${mins[$p]}" ;;
        esac
    done < <(assigned "$1")
    if [ -z "$bad" ]; then ok "$3: resumed past what it held (${mins[*]} -> $(assigned "$1" | awk '{printf "%s ", $2}'))"
    else nok "$3: resumed before what it held" "$bad"; fi
}

serve serve0 || { nok "serve starts"; finish; }
curl -sf -X PUT "$api/collections/c" -H 'Content-Type: application/json' \
    -d '{"vectors": {"size": 2, "distance": "Dot"}}' >/dev/null || { nok "create collection"; finish; }

python3 $MODEL produce "$bs" $TOPIC "$N" $PARTS 40 &
prod_pid=$!

start=$(date +%s)
for r in $(seq 1 "$RESTARTS"); do
    log=serve$((r - 1))
    # Most kills land while consuming; every third one lands at a random
    # moment of start-up (recovery, group join).
    if [ $((r % 3)) -ne 0 ] && wait_assigned "$tmp/$log.log" 1; then
        sleep "$((RANDOM % 20)).$((RANDOM % 10))e-1"
    else
        sleep "0.$((RANDOM % 10))"
    fi
    python3 $MODEL snapshot "$api" c $PARTS >"$tmp/snap" 2>/dev/null || echo "0 0 0 0" >"$tmp/snap"
    kill -KILL "$serve_pid"
    wait "$serve_pid" 2>/dev/null
    serve_pid=
    echo "kill -9 #$r at $(($(date +%s) - start)) s (held from: $(cat "$tmp/snap"))"
    serve "serve$r" || { nok "restart $r: serve starts"; finish; }
    if wait_assigned "$tmp/serve$r.log" $PARTS; then
        check_resume "$tmp/serve$r.log" "$tmp/snap" "restart $r"
    elif [ $r -eq "$RESTARTS" ]; then
        nok "restart $r: partitions assigned"
    fi
done

if wait "$prod_pid"; then ok "producer wrote $N messages"; else nok "producer"; fi
prod_pid=
caught=0
for _ in $(seq 120); do
    if python3 $MODEL check "$api" c "$N" $PARTS >"$tmp/check" 2>&1; then caught=1; break; fi
    sleep 0.25
done
if [ $caught = 1 ]; then ok "final state equals the model (payloads, deletes, count)"
else nok "final state equals the model" "$(cat "$tmp/check")"; fi

# Topic ends, then a clean restart must resume exactly there.
ends=$(for p in $(seq 0 $((PARTS - 1))); do
    kcat -Q -b "$bs" -t "$TOPIC:$p:-1" | sed -E 's/.*\[([0-9]+)\] offset ([0-9]+).*/\1 \2/'
done)
total=$(echo "$ends" | awk '{s+=$2} END {print s}')
[ "$total" = "$N" ] && ok "topic holds $N messages" || nok "topic holds $N messages" "$total"
kill -TERM "$serve_pid"
if wait "$serve_pid"; then ok "SIGTERM: exit 0"; else nok "SIGTERM: exit 0"; fi
serve_pid=
serve final || { nok "final restart"; finish; }
if wait_assigned "$tmp/final.log" $PARTS; then
    got=$(assigned "$tmp/final.log")
    if [ "$got" = "$ends" ]; then ok "stored progress = topic end ($(echo $ends))"
    else nok "stored progress = topic end" "assigned $(echo $got), ends $(echo $ends)"; fi
else
    nok "final restart: partitions assigned"
fi
if python3 $MODEL check "$api" c "$N" $PARTS >"$tmp/check" 2>&1; then ok "state unchanged after clean restart"
else nok "state unchanged after clean restart" "$(cat "$tmp/check")"; fi
if kcat -C -b "$bs" -t $TOPIC-dlq -e -q -c 1 2>/dev/null | grep -q .; then
    nok "no dead letters" "$(kcat -C -b "$bs" -t $TOPIC-dlq -e -q -f '%h\n' -c 3 2>/dev/null)"
else
    ok "no dead letters"
fi
kill -TERM "$serve_pid"
wait "$serve_pid" || nok "final SIGTERM: exit 0"
serve_pid=
echo "took $(($(date +%s) - start)) s"
finish
