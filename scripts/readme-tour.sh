#!/usr/bin/env bash
# Run the README's tour exactly as written (only the port is changed, to a
# free one) against a fresh server with empty storage, and check the
# answers.  Prints "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
bin=${VECLOG_BIN:-bin/veclog}
tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 16333)
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

VECLOG__SERVICE__HTTP_PORT=$port VECLOG__STORAGE__STORAGE_PATH=$tmp/storage \
    "$bin" serve >"$tmp/server.log" 2>&1 &
pid=$!
for _ in $(seq 50); do curl -sf "localhost:$port/readyz" >/dev/null && break; sleep 0.1; done

# the first ```sh block after "## A short tour"
awk '/^## A short tour/{t=1} t&&/^```sh/{b=1;next} b&&/^```/{exit} b' README.md |
    sed "s/localhost:6333/localhost:$port/g" >"$tmp/tour.sh"
out=$(bash -e "$tmp/tour.sh" 2>&1)
rc=$?

pass=0 fail=0
check() { # name, pattern expected in the output
    if grep -qE -- "$2" <<<"$out"; then pass=$((pass + 1)); else
        fail=$((fail + 1)); echo "FAIL: $1 (expected /$2/)"; fi
}
[ $rc -eq 0 ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: tour exited $rc"; }
if grep -q '"error"' <<<"$out"; then fail=$((fail + 1)); echo "FAIL: an error response:"; grep '"error"' <<<"$out"; else pass=$((pass + 1)); fi
check "create" '^\{"result":true'
check "upsert" '"operation_id":1,"status":"completed"'
check "filtered query" '"points":\[\{"id":"5c56c793-69f3-4fbf-87e6-c4bf54c28c26".*\{"id":2,'
check "scroll page" '"next_page_offset":"5c56c793-69f3-4fbf-87e6-c4bf54c28c26"'
check "count" '"result":\{"count":2\}'
check "get point" '"result":\{"id":2,"payload":\{"city":"London"'
check "alias query excludes the query point" '"result":\{"points":\[\{"id":"5c56c793'
check "info" '"points_count":3'
check "metrics" 'veclog_collection_points\{collection="cities"\} 3'
if [ $fail -ne 0 ]; then echo "--- tour output"; echo "$out"; echo "--- server log"; cat "$tmp/server.log"; fi
echo "readme-tour: $pass passed, $fail failed"
[ $fail -eq 0 ]
