#!/usr/bin/env bash
# End-to-end tests: Qdrant's official JavaScript client (tests/e2e) against
# a real `bin/veclog serve`.
#
#   bash scripts/e2e.sh [node --test arguments, e.g. a test file]
#
# Installs the pinned client with `npm ci` when tests/e2e/node_modules is
# missing or was not installed from this package-lock.json, starts the
# server (loopback, 127.0.0.1) on a free
# loopback port with a fresh storage directory, waits for /readyz, runs
# `node --test`, stops the server with SIGTERM and checks that it exited 0.
# The last line is "e2e: N passed, N failed" (N from the test runner; a
# server that fails to start or to stop cleanly adds one failure), and the
# exit status is non-zero on any failure.
#
# Environment: VECLOG_BIN (default bin/veclog), VECLOG_E2E_SEED (random
# data seed), VECLOG_E2E_TIMEOUT (seconds for the whole test run, default
# 400), VECLOG_E2E_KEEP=1 keeps the temporary directory.
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
e2e=$root/tests/e2e

bin=${VECLOG_BIN:-bin/veclog}
case $bin in /*) ;; *) bin=$root/$bin ;; esac
budget=${VECLOG_E2E_TIMEOUT:-400}

passed=0
failed=0
finish() {
    echo "e2e: $passed passed, $failed failed"
    [ "$failed" -eq 0 ] && exit 0
    exit 1
}

if ! command -v node >/dev/null || ! command -v npm >/dev/null || ! command -v curl >/dev/null; then
    echo "e2e: node, npm (Node 20 or later) and curl are required" >&2
    failed=1
    finish
fi
if [ ! -x "$bin" ]; then
    echo "e2e: $bin is not an executable; run make first" >&2
    failed=1
    finish
fi

# Install the pinned client unless node_modules matches package-lock.json.
stamp=$e2e/node_modules/.e2e-lock.sha256
want=$(sha256sum "$e2e/package-lock.json" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "e2e: npm ci in tests/e2e"
    if ! (cd "$e2e" && npm ci --no-audit --no-fund); then
        echo "e2e: npm ci failed" >&2
        failed=1
        finish
    fi
    echo "$want" >"$stamp"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/veclog-e2e.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    if [ "${VECLOG_E2E_KEEP:-0}" = 1 ]; then
        echo "e2e: kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Is the process running (not exited, not a zombie waiting to be reaped)?
alive() {
    local st
    st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

server_log() {
    echo "--- server log (last 60 lines of $tmp/server.log)"
    tail -n 60 "$tmp/server.log"
    echo "---"
}

# Start the server on a free port (another process may take the port
# between the probe and the bind: then try another).
ready=0
for _ in 1 2 3; do
    port=$(node -e '
const s = require("net").createServer();
s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')
    url=http://127.0.0.1:$port
    VECLOG__SERVICE__HOST=127.0.0.1 \
    VECLOG__SERVICE__HTTP_PORT=$port \
    VECLOG__STORAGE__STORAGE_PATH=$tmp/storage \
    VECLOG__STORAGE__SNAPSHOTS_PATH=$tmp/snapshots \
        "$bin" serve >>"$tmp/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do
        if ! alive "$pid"; then break; fi
        if curl -sf -o /dev/null "$url/readyz"; then ready=1; break; fi
        sleep 0.1
    done
    [ $ready -eq 1 ] && break
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=
done
if [ $ready -ne 1 ]; then
    echo "e2e: the server did not become ready at $url" >&2
    server_log
    failed=1
    finish
fi

# Two reporters: spec for people, TAP in a file for the counts.  A test
# that hangs fails on its own after 240 s (where node has --test-timeout:
# the migration story takes about a minute on 2 cores);
# the whole run is stopped after $budget s.
opts=()
if node --help | grep -q -- --test-timeout; then opts+=(--test-timeout=240000); fi
(cd "$e2e" && VECLOG_E2E_URL=$url VECLOG_BIN=$bin VECLOG_E2E_TMP=$tmp \
    timeout -k 10 "$budget" node --test ${opts[@]+"${opts[@]}"} \
        --test-reporter=spec --test-reporter-destination=stdout \
        --test-reporter=tap --test-reporter-destination="$tmp/tap.txt" \
        "$@")
rc=$?

touch "$tmp/tap.txt"
passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tmp/tap.txt" | tail -n 1)
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tmp/tap.txt" | tail -n 1)
if [ -z "$passed" ] || [ -z "$failed" ]; then
    # no summary (the run was stopped): count the top-level results so far
    passed=$(grep -c '^ok ' "$tmp/tap.txt")
    failed=$(grep -c '^not ok ' "$tmp/tap.txt")
fi
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "e2e: the test run took longer than ${budget}s and was stopped" >&2
    failed=$((failed + 1))
elif [ $rc -ne 0 ] && [ "$failed" -eq 0 ]; then
    echo "e2e: node --test exited $rc with no failed test counted" >&2
    failed=1
fi
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
    echo "e2e: no test ran" >&2
    failed=1
fi

# Stop the server; it must exit 0 on SIGTERM within 30 s.
if ! alive "$pid"; then
    wait "$pid"
    echo "e2e: the server died during the tests (exit status $?)" >&2
    failed=$((failed + 1))
    server_log
    pid=
    finish
fi
kill -TERM "$pid" 2>/dev/null
for _ in $(seq 300); do
    alive "$pid" || break
    sleep 0.1
done
if alive "$pid"; then
    echo "e2e: the server did not stop within 30 s of SIGTERM" >&2
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    failed=$((failed + 1))
else
    wait "$pid"
    code=$?
    if [ $code -ne 0 ]; then
        echo "e2e: the server exited $code after SIGTERM (expected 0)" >&2
        failed=$((failed + 1))
    fi
fi
pid=
if [ "$failed" -ne 0 ]; then
    server_log
fi
finish
