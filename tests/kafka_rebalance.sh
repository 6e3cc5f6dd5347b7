#!/usr/bin/env bash
# kafka_rebalance.sh - a partition takeover after kill -9: two `veclog
# serve` processes (A and B: separate storage, same consumer group, the
# same collection "c" created on both) consume a 4-partition topic on
# `veclog broker`.  Message j is a sink-connector upsert of point j with
# payload {"j": j}, produced to partition j % 4 (so it is at offset j // 4).
#
#   phase 1: both members hold partitions; P1 messages are produced.
#            Each partition's messages are all in exactly one server.
#   kill -9 of a member (the victim); the survivor logs "assigned" with
#            the victim's partitions and their resume offsets R[p].
#   phase 2: P2 messages produced after the kill.
#
# Checks (storage is separate, so "applied once" means once over the two):
#   - the union of both servers' points is every produced id, and every
#     point's payload is its message's;
#   - the survivor holds every phase-2 message;
#   - a message is in both servers only across the takeover boundary: in a
#     partition that moved from the victim, at an offset >= R[p] (the
#     victim applied it, the survivor re-read it from the group's
#     committed offset); R[p] <= the victim's first offset not applied,
#     so nothing is skipped;
#   - nothing else is in both: in particular the survivor applied nothing
#     of the victim's partitions below R[p].
# Prints "kafka-rebalance: N passed, N failed"; exits non-zero on failure.
#
#   VECLOG_BIN=bin/veclog tests/kafka_rebalance.sh
set -u
cd "$(dirname "$0")/.."
BIN=${VECLOG_BIN:-bin/veclog}
TOPIC=rb
PARTS=4
P1=${RB_P1:-2000}
PM=${RB_PM:-2000}
P2=${RB_P2:-2000}
GROUP=rbgroup
passed=0
failed=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/veclog-rebalance-XXXXXX")
broker_pid=
prod_pid=
pid_a=
pid_b=

cleanup() {
    for p in $pid_a $pid_b $prod_pid $broker_pid; do
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if [ "${RB_KEEP:-0}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
( trap 'kill $s 2>/dev/null; exit 0' TERM; sleep 110 & s=$!; wait $s
  echo "FAIL timed out after 110 s"; kill -TERM $$ ) 2>/dev/null &
watchdog=$!
trap 'kill $watchdog 2>/dev/null; cleanup' EXIT
trap 'exit 130' INT TERM

ok() { passed=$((passed + 1)); echo "ok   $1"; }
nok() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }
finish() {
    if [ "$failed" -gt 0 ]; then
        for f in "$tmp"/*.log; do echo "--- $f (last 20 lines)"; tail -n 20 "$f"; done
    fi
    echo "kafka-rebalance: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

for c in kcat curl python3; do
    command -v $c >/dev/null || { nok "$c is needed"; finish; }
done
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_a=$(freeport)
port_b=$(freeport)

"$BIN" broker >"$tmp/broker.out" 2>"$tmp/broker.log" &
broker_pid=$!
for _ in $(seq 100); do grep -q bootstrap.servers "$tmp/broker.out" && break; sleep 0.05; done
bs=$(sed -n 's/^bootstrap.servers=//p' "$tmp/broker.out")
[ -n "$bs" ] || { nok "broker starts"; finish; }
# Auto-create the 4-partition topic before anyone subscribes.
kcat -L -b "$bs" -t $TOPIC 2>/dev/null | grep -q "$PARTS partitions" || { nok "topic $TOPIC created"; finish; }
start=$(date +%s)

serve() { # name, port[, storage name]; sets REPLY to the pid
    VECLOG__STORAGE__STORAGE_PATH="$tmp/storage-${3:-$1}" VECLOG__SERVICE__HTTP_PORT=$2 \
    VECLOG__SERVICE__HOST=127.0.0.1 VECLOG__KAFKA__BROKERS="$bs" \
    VECLOG__KAFKA__TOPICS=$TOPIC VECLOG__DLQ__TOPIC=$TOPIC-dlq VECLOG__KAFKA__GROUP_ID=$GROUP \
    VECLOG__KAFKA__BATCH_TIMEOUT_MS=20 \
    VECLOG__KAFKA__PROPERTIES__SESSION_TIMEOUT_MS=3000 \
    VECLOG__KAFKA__PROPERTIES__HEARTBEAT_INTERVAL_MS=500 \
        "$BIN" serve >>"$tmp/$1.log" 2>&1 &
    REPLY=$!
    for _ in $(seq 200); do curl -sf "http://127.0.0.1:$2/readyz" >/dev/null 2>&1 && return 0; sleep 0.05; done
    return 1
}
create() { # port
    curl -sf -X PUT "http://127.0.0.1:$1/collections/c" -H 'Content-Type: application/json' \
        -d '{"vectors": {"size": 2, "distance": "Dot"}}' >/dev/null
}

# Partitions a member holds now, from its "assigned"/"revoked"/"lost"
# lines (cooperative: incremental; eager: whole sets).
held() { # log
    grep -Eo '(assigned|revoked|lost) [0-9]+ partition\(s\): .*' "$1" | python3 -c '
import re, sys
held = set()
for line in sys.stdin:
    what = line.split()[0]
    parts = {int(p) for p in re.findall(r"\[(\d+)\]", line)}
    held = held | parts if what == "assigned" else held - parts
print(" ".join(str(p) for p in sorted(held)))'
}

# The partition -> resume offset pairs of the log's last "assigned" line.
last_assigned() { # log
    grep -Eo 'assigned [0-9]+ partition\(s\): .*' "$1" | tail -n 1 | grep -Eo "\[[0-9]+\]@[0-9a-z]+" | tr -d '[]' | tr @ ' '
}

produce() { # from, to (exclusive)
    python3 -c '
import sys
for j in range(int(sys.argv[1]), int(sys.argv[2])):
    print("%d|{\"collection_name\":\"c\",\"id\":%d,\"vector\":[1,%d],\"payload\":{\"j\":%d}}" % (j % 4, j, j % 5, j))
' "$1" "$2" >"$tmp/msgs"
    local rc=0
    for p in $(seq 0 $((PARTS - 1))); do
        grep "^$p|" "$tmp/msgs" | cut -d'|' -f2- | kcat -P -b "$bs" -t $TOPIC -p "$p" -X linger.ms=5 || rc=1
    done
    return $rc
}

# The same messages, paced over SECONDS (in the background: the kill lands
# while they stream in).
produce_paced() { # from, to, seconds
    python3 - "$bs" "$TOPIC" "$@" <<'EOF'
import subprocess, sys, time
bs, topic, lo, hi, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
ps = [subprocess.Popen(["kcat", "-P", "-b", bs, "-t", topic, "-p", str(p), "-X", "linger.ms=5"],
                       stdin=subprocess.PIPE, text=True) for p in range(4)]
for j in range(lo, hi):
    ps[j % 4].stdin.write('{"collection_name":"c","id":%d,"vector":[1,%d],"payload":{"j":%d}}\n' % (j, j % 5, j))
    if j % 20 == 19:
        for p in ps:
            p.stdin.flush()
        time.sleep(secs * 20 / (hi - lo))
rc = 0
for p in ps:
    p.stdin.close()
    rc |= p.wait()
sys.exit(rc)
EOF
}

# id -> j of every point on a server, as JSON
points() { # port
    python3 - "$1" <<'EOF'
import json, sys, urllib.request
url = "http://127.0.0.1:%s/collections/c/points/scroll" % sys.argv[1]
pts, off = {}, None
while True:
    body = {"limit": 2000, "with_payload": True}
    if off is not None:
        body["offset"] = off
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    res = json.load(urllib.request.urlopen(req, timeout=10))["result"]
    for p in res["points"]:
        pts[p["id"]] = p["payload"].get("j")
    off = res.get("next_page_offset")
    if off is None:
        break
json.dump(pts, sys.stdout)
EOF
}

# Wait until the union of the two servers (or one) holds ids [from, n).
wait_union() { # from, n, ports...
    local from=$1 n=$2 files=(); shift 2
    for p in "$@"; do files+=("$tmp/pts-$p.json"); done
    for _ in $(seq 100); do
        for p in "$@"; do points "$p" >"$tmp/pts-$p.json" 2>/dev/null || echo '{}' >"$tmp/pts-$p.json"; done
        python3 -c '
import json, sys
lo, n = int(sys.argv[1]), int(sys.argv[2]); have = set()
for f in sys.argv[3:]:
    have |= {int(k) for k in json.load(open(f))}
sys.exit(0 if set(range(lo, n)) <= have else 1)' "$from" "$n" "${files[@]}" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

serve a "$port_a" || { nok "server A starts"; finish; }
pid_a=$REPLY
create "$port_a" || nok "create c on A"
serve b "$port_b" || { nok "server B starts"; finish; }
pid_b=$REPLY
create "$port_b" || nok "create c on B"

# Both members hold partitions, four in all.
for _ in $(seq 400); do
    ha=$(held "$tmp/a.log"); hb=$(held "$tmp/b.log")
    [ -n "$ha" ] && [ -n "$hb" ] && [ $(($(wc -w <<<"$ha") + $(wc -w <<<"$hb"))) -eq $PARTS ] && break
    sleep 0.05
done
if [ -n "$ha" ] && [ -n "$hb" ]; then ok "both members hold partitions (A: $ha; B: $hb) at $(($(date +%s) - start)) s"
else nok "both members hold partitions" "A: '$ha', B: '$hb'"; finish; fi

produce 0 "$P1" || nok "produce phase 1"
if wait_union 0 "$P1" "$port_a" "$port_b"; then ok "phase 1: every id applied on A or B"
else nok "phase 1: every id applied on A or B"; fi

# Kill the member with more partitions (either one holds some).
if [ "$(wc -w <<<"$ha")" -ge "$(wc -w <<<"$hb")" ]; then
    victim=a; vport=$port_a; vpid=$pid_a; survivor=b; sport=$port_b; vheld=$ha
else
    victim=b; vport=$port_b; vpid=$pid_b; survivor=a; sport=$port_a; vheld=$hb
fi
before=$(grep -c 'assigned' "$tmp/$survivor.log")
produce_paced "$P1" $((P1 + PM)) 4 &
prod_pid=$!
sleep "1.$((RANDOM % 10))"
kill -KILL "$vpid"
wait "$vpid" 2>/dev/null
[ $victim = a ] && pid_a= || pid_b=
killed=$(date +%s)
echo "kill -9 $victim (held $vheld) at $((killed - start)) s"

# The survivor takes the victim's partitions over.
for _ in $(seq 400); do
    [ "$(held "$tmp/$survivor.log" | wc -w)" -eq $PARTS ] && break
    sleep 0.05
done
if [ "$(held "$tmp/$survivor.log" | wc -w)" -eq $PARTS ] && [ "$(grep -c 'assigned' "$tmp/$survivor.log")" -gt "$before" ]; then
    ok "survivor $survivor assigned all $PARTS partitions after $(($(date +%s) - killed)) s ($(last_assigned "$tmp/$survivor.log" | tr '\n' ' '))"
else
    nok "survivor assigned the victim's partitions" "holds '$(held "$tmp/$survivor.log")'"
    finish
fi
last_assigned "$tmp/$survivor.log" >"$tmp/resume"

wait "$prod_pid" || nok "produce while killing"
prod_pid=
N0=$((P1 + PM))
produce "$N0" $((N0 + P2)) || nok "produce after the kill"
if wait_union "$N0" $((N0 + P2)) "$sport"; then ok "survivor holds every id produced after the kill"
else nok "survivor holds every id produced after the kill"; fi
points "$sport" >"$tmp/survivor.json"
# The victim's storage as kill -9 left it: restart it on another topic and
# group (it consumes nothing) and read its points back.
TOPIC=$TOPIC-none GROUP=rb-readback serve "${victim}2" "$vport" "$victim" || nok "victim restarts on its storage"
vpid=$REPLY
[ $victim = a ] && pid_a=$vpid || pid_b=$vpid
points "$vport" >"$tmp/victim.json" || nok "victim's points read back"
kill -TERM "$vpid"; wait "$vpid" && ok "victim (read back) SIGTERM: exit 0" || nok "victim SIGTERM: exit 0"
[ $victim = a ] && pid_a= || pid_b=

python3 - "$tmp/victim.json" "$tmp/survivor.json" "$tmp/resume" "$N0" $((N0 + P2)) "$vheld" <<'EOF' >"$tmp/verdict"
import json, sys
victim = {int(k): v for k, v in json.load(open(sys.argv[1])).items()}
surv = {int(k): v for k, v in json.load(open(sys.argv[2])).items()}
resume = {}
for line in open(sys.argv[3]):
    p, off = line.split()
    resume[int(p)] = int(off) if off.isdigit() else 0
p1, n = int(sys.argv[4]), int(sys.argv[5])
moved = {int(p) for p in sys.argv[6].split()}
ids = set(range(n))
def res(name, good, detail=""):
    print(("ok   " if good else "FAIL ") + name + ("" if good else ": " + detail))
wrong = [i for i, j in list(victim.items()) + list(surv.items()) if j != i]
res("every payload is its message's", not wrong, str(wrong[:10]))
union = set(victim) | set(surv)
res("union of A and B = every produced id (%d)" % len(ids), union == ids,
    "missing %s, extra %s" % (sorted(ids - union)[:10], sorted(union - ids)[:10]))
late = set(range(p1, n))
res("survivor holds every message produced after the kill (%d)" % len(late), late <= set(surv),
    "missing %s" % sorted(late - set(surv))[:10])
res("victim holds only its partitions", all(i % 4 in moved for i in victim),
    str(sorted(i for i in victim if i % 4 not in moved)[:10]))
both = set(victim) & set(surv)
bad = sorted(i for i in both if i % 4 not in moved or i // 4 < resume.get(i % 4, 0))
res("ids in both servers only across the takeover boundary (%d such ids)" % len(both), not bad,
    "outside the boundary: %s" % bad[:10])
below = sorted(i for i in surv if i % 4 in moved and i // 4 < resume.get(i % 4, 0))
res("survivor applied nothing of the victim's partitions below its resume offsets", not below,
    str(below[:10]))
for p in sorted(moved):
    vmax = max((i // 4 for i in victim if i % 4 == p), default=-1)
    res("partition %d: resume offset %d <= victim's next (%d)" % (p, resume.get(p, 0), vmax + 1),
        resume.get(p, 0) <= vmax + 1)
EOF
while read -r verdict name; do
    if [ "$verdict" = ok ]; then ok "$name"; else nok "$name"; fi
done <"$tmp/verdict"
[ -s "$tmp/verdict" ] || nok "verdict computed"

stop() { kill -TERM "$1"; wait "$1"; }
if [ $survivor = a ]; then stop "$pid_a" && ok "survivor SIGTERM: exit 0" || nok "survivor SIGTERM: exit 0"; pid_a=
else stop "$pid_b" && ok "survivor SIGTERM: exit 0" || nok "survivor SIGTERM: exit 0"; pid_b=; fi
echo "took $(($(date +%s) - start)) s"
finish
