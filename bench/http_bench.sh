#!/usr/bin/env bash
# Query-node load benchmark: QPS and latency of POST
# /collections/{c}/points/query (exact k-NN, limit 10) through the REST
# API, against the in-process search rate of the same data.
#
#   bench/http_bench.sh            (or `make bench`)
#
# 1. Builds bin/veclog and build/libveclog.a (make), bench/gen_points
#    (libc only) and bench/search_inproc (against build/libveclog.a with
#    the Makefile's own CFLAGS, LDFLAGS and LDLIBS, read from make).
#    Installs wrk (Debian package) if it is missing.
# 2. Generates BENCH_POINTS seeded clustered points (d=128) as upsert
#    batches, and BENCH_NQ query bodies near the same clusters.
# 3. Starts `bin/veclog serve` on a free loopback port with a temporary
#    storage directory, creates collection "bench" (128, Cosine) and loads
#    the batches with PUT /collections/bench/points?wait=true.
# 4. For each server worker count in BENCH_WORKERS (VECLOG__SERVICE__
#    MAX_WORKERS; the server is restarted on the same storage), runs wrk
#    with bench/query.lua (a random query from the set per request) for
#    each threads:connections pair in BENCH_MATRIX, BENCH_SECONDS each,
#    after a 1 s warm-up.
# 5. Stops the server, then runs bench/search_inproc on the same batches
#    and queries (coll_search in a loop on 1 and 2 threads).
# 6. Prints a table, the worker-scaling ratio and HTTP / in-process
#    ratios, and writes them to docs/bench-http.md (BENCH_OUT; empty: no
#    file) with the date, the machine and the command.
#
# Environment (defaults): BENCH_POINTS (20000), BENCH_SECONDS (10),
# BENCH_NQ (1000 query vectors), BENCH_BATCH (1000 points per upsert),
# BENCH_SEED (42), BENCH_WORKERS ("1 2"), BENCH_MATRIX ("1:1 1:8 2:2 2:8",
# wrk threads:connections), BENCH_OUT (docs/bench-http.md),
# BENCH_RETRIES (0: re-run a row disturbed by other load on the machine up
# to this many times, after waiting up to 30 s for an idle second, and keep
# the least disturbed run; costs time only when disturbed),
# BENCH_SKIP_BUILD=1 (use the binaries as they are), BENCH_KEEP=1 (keep the
# temporary directory), BUILD / BIN (make's build and binary directories).
#
# The whole run takes about 2 minutes with the defaults.  wrk runs on the
# same machine as the server and takes CPU from it: on a 2-core machine
# the numbers are what one box can drive, not the server's ceiling.
# Exits non-zero if any request failed or returned a non-2xx status.
set -euo pipefail
cd "$(dirname "$0")/.."

points=${BENCH_POINTS:-20000}
secs=${BENCH_SECONDS:-10}
nq=${BENCH_NQ:-1000}
batch=${BENCH_BATCH:-1000}
retries=${BENCH_RETRIES:-0}
seed=${BENCH_SEED:-42}
workers_list=${BENCH_WORKERS:-1 2}
matrix=${BENCH_MATRIX:-1:1 1:8 2:2 2:8}
out_md=${BENCH_OUT-docs/bench-http.md}
build=${BUILD:-build}
bindir=${BIN:-bin}
dim=128
coll=bench

# the command, as it can be re-run: the BENCH_* settings given, then us
cmd=""
for v in BENCH_POINTS BENCH_SECONDS BENCH_NQ BENCH_BATCH BENCH_SEED BENCH_WORKERS BENCH_MATRIX \
    BENCH_RETRIES; do
    [ -n "${!v+x}" ] && cmd+="$v=$(printf %q "${!v}") "
done
if [ -n "${BENCH_VIA_MAKE:-}" ]; then cmd+="make bench"; else cmd+="bench/http_bench.sh"; fi

say() { printf '%s\n' "$*" >&2; }
die() { say "http_bench: $*"; exit 1; }

# ---- cleanup -------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/veclog-bench.XXXXXX")
pid=""
stop_server() {
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
}
cleanup() {
    local rc=$?
    stop_server
    if [ -n "${BENCH_KEEP:-}" ]; then say "http_bench: kept $tmp"; else rm -rf "$tmp"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- tools and build -----------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
    say "http_bench: installing wrk (Debian package)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -qq wrk >/dev/null 2>&1 ||
        { $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq wrk >/dev/null; } ||
        die "wrk is required (apt-get install wrk)"
fi
command -v curl >/dev/null 2>&1 || die "curl is required"

makevar() { # the value make uses for a variable of the Makefile
    make -s --no-print-directory BUILD="$build" BIN="$bindir" -f Makefile \
        -f <(printf 'bench-print-%%:\n\t@echo $($*)\n') "bench-print-$1"
}
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    make --no-print-directory BUILD="$build" BIN="$bindir" "$bindir/veclog" "$build/libveclog.a" >&2 ||
        die "make failed"
fi
cc_=$(makevar CC)
cflags=$(makevar CFLAGS)
ldflags=$(makevar LDFLAGS)
ldlibs=$(makevar LDLIBS)
mkdir -p "$build/bench"
# shellcheck disable=SC2086  # flag lists are meant to split
build_tool() { # name, then link arguments
    local name=$1
    shift
    if [ -n "${BENCH_SKIP_BUILD:-}" ] && [ -x "$build/bench/$name" ]; then return 0; fi
    if [ ! -x "$build/bench/$name" ] || [ "bench/$name.c" -nt "$build/bench/$name" ] ||
        { [ $# -gt 0 ] && [ "$build/libveclog.a" -nt "$build/bench/$name" ]; }; then
        say "http_bench: building $build/bench/$name"
        $cc_ $cflags -c "bench/$name.c" -o "$build/bench/$name.o"
        $cc_ $ldflags "$build/bench/$name.o" "$@" -o "$build/bench/$name"
    fi
}
build_tool gen_points
build_tool search_inproc "$build/libveclog.a" $ldlibs
[ -x "$bindir/veclog" ] || die "$bindir/veclog is missing"

# ---- data ----------------------------------------------------------------
load0=$(cut -d' ' -f1-3 /proc/loadavg)
say "http_bench: generating $points points (d=$dim, seed $seed) and $nq queries"
"$build/bench/gen_points" points -n "$points" -d "$dim" -s "$seed" -b "$batch" "$tmp/batches"
"$build/bench/gen_points" queries -n "$nq" -d "$dim" -s "$seed" -l 10 "$tmp/queries.jsonl"

# ---- server --------------------------------------------------------------
port=""
server_workers=""
start_server() { # workers (empty: the server's default)
    local w=$1 log
    for _ in $(seq 20); do
        port=$((20000 + RANDOM % 40000))
        # skip ports something already answers on
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
        log=$tmp/server-w${w:-auto}.log
        env VECLOG__SERVICE__HOST=127.0.0.1 VECLOG__SERVICE__HTTP_PORT="$port" \
            VECLOG__STORAGE__STORAGE_PATH="$tmp/storage" \
            ${w:+VECLOG__SERVICE__MAX_WORKERS=$w} \
            "$bindir/veclog" serve >"$log" 2>&1 &
        pid=$!
        for _ in $(seq 150); do
            curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
            server_workers=$(grep -o 'with [0-9]* worker threads' "$log" | grep -o '[0-9]*' | head -1)
            say "http_bench: server on port $port, ${server_workers:-?} worker threads"
            return 0
        fi
        if kill -0 "$pid" 2>/dev/null || ! grep -q 'listen on' "$log"; then
            cat "$log" >&2
            die "the server did not become ready"
        fi
        wait "$pid" 2>/dev/null || true   # the port was taken meanwhile: another
        pid=""
    done
    die "no free port found"
}

api() { # method, path, [curl data args...]
    local m=$1 p=$2
    shift 2
    curl -sS -f -X "$m" "http://127.0.0.1:$port$p" -H 'Content-Type: application/json' "$@"
}

set -- $workers_list
start_server "$1"
api PUT "/collections/$coll" -d "{\"vectors\": {\"size\": $dim, \"distance\": \"Cosine\"}}" >/dev/null ||
    die "create collection failed"
t0=$(date +%s.%N)
for f in "$tmp"/batches/batch-*.json; do
    r=$(api PUT "/collections/$coll/points?wait=true" --data-binary "@$f") ||
        die "upsert $f failed"
    grep -q '"status":"completed"' <<<"$r" || die "upsert $f: $r"
done
t1=$(date +%s.%N)
count=$(api POST "/collections/$coll/points/count" -d '{"exact": true}' | grep -o '"count":[0-9]*' | grep -o '[0-9]*$')
[ "$count" = "$points" ] || die "loaded $count points, expected $points"
load_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
say "http_bench: loaded $count points over HTTP in ${load_s} s"
hits=$(head -1 "$tmp/queries.jsonl" | api POST "/collections/$coll/points/query" --data-binary @- |
    grep -o '"score"' | wc -l)
[ "$hits" -eq 10 ] || die "a query returned $hits hits, expected 10"

# ---- wrk -----------------------------------------------------------------
# CPU accounting around each run, in cores: the server process (all its
# threads), wrk (this shell's reaped children: `times`, no subshell) and
# whatever else the machine was busy with (/proc/stat busy incl. steal,
# minus those two).  "other" well above 0 means the row is disturbed.
hz=$(getconf CLK_TCK)
cpu_snap() { # slot
    local i=$1
    snap_wall[i]=$(date +%s.%N)
    snap_busy[i]=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat)
    snap_srv[i]=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
    times >"$tmp/times"
    snap_kids[i]=$(awk 'NR == 2 { n = 0; for (f = 1; f <= 2; f++) { split($f, a, "m"); n += a[1] * 60 + a[2] } print n }' "$tmp/times")
}
cpu_use() { # -> "server wrk other" in cores since the last two snaps
    awk -v hz="$hz" -v w0="${snap_wall[0]}" -v w1="${snap_wall[1]}" -v b0="${snap_busy[0]}" \
        -v b1="${snap_busy[1]}" -v s0="${snap_srv[0]}" -v s1="${snap_srv[1]}" \
        -v k0="${snap_kids[0]}" -v k1="${snap_kids[1]}" 'BEGIN {
        wall = w1 - w0; srv = (s1 - s0) / hz / wall; wrk = (k1 - k0) / wall
        other = (b1 - b0) / hz / wall - srv - wrk
        printf "%.2f %.2f %.2f", srv, wrk, other < 0 ? 0 : other }'
}
declare -a snap_wall snap_busy snap_srv snap_kids
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
disturbed() { awk -v o="$1" 'BEGIN { exit !(o > 0.25) }'; }
idle_wait() { # up to 30 s for a second in which the machine uses < 0.15 cores
    local a b end=$((SECONDS + 30))
    while [ $SECONDS -lt $end ]; do
        a=$(busy_ticks)
        sleep 1
        b=$(busy_ticks)
        [ $((b - a)) -lt $((hz * 15 / 100)) ] && return 0
    done
    say "http_bench: the machine is still busy; measuring anyway"
}

rows=()        # "workers threads conns qps p50_us p99_us non2xx errors cpu_srv cpu_wrk cpu_other runs"
failed=0
for w in $workers_list; do
    [ -n "$pid" ] || start_server "$w"
    wrk -t2 -c8 -d1s -s bench/query.lua "http://127.0.0.1:$port" -- "$tmp/queries.jsonl" "$coll" \
        >/dev/null 2>&1 || true
    for tc in $matrix; do
        t=${tc%%:*} c=${tc##*:}
        o=$tmp/wrk-w$w-t$t-c$c.txt
        keep="" runs=0
        while :; do
            [ $runs -eq 0 ] || idle_wait
            runs=$((runs + 1))
            say "http_bench: workers=$server_workers wrk -t$t -c$c -d${secs}s${keep:+ (again: disturbed)}"
            cpu_snap 0
            wrk -t"$t" -c"$c" -d"${secs}s" --latency -s bench/query.lua "http://127.0.0.1:$port" \
                -- "$tmp/queries.jsonl" "$coll" >"$o" 2>&1 || { cat "$o" >&2; die "wrk failed"; }
            cpu_snap 1
            line=$(grep '^BENCH ' "$o") || { cat "$o" >&2; die "no result from wrk"; }
            kv() { grep -o "$1=[0-9.]*" <<<"$line" | cut -d= -f2; }
            cand="$server_workers $t $c $(kv qps) $(kv p50_us) $(kv p99_us) $(kv non2xx) $(kv errors) $(cpu_use)"
            [ "$(kv non2xx)" = 0 ] && [ "$(kv errors)" = 0 ] || failed=1
            # keep the least disturbed run
            if [ -z "$keep" ] || awk -v a="${cand##* }" -v b="${keep##* }" 'BEGIN { exit !(a < b) }'; then
                keep=$cand
            fi
            disturbed "${keep##* }" && [ $runs -le "$retries" ] || break
        done
        rows+=("$keep $runs")
    done
    stop_server
done

# ---- in-process ----------------------------------------------------------
inproc=""
for t in 1 2; do
    keep="" keep_other="" runs=0
    while :; do
        [ $runs -eq 0 ] || idle_wait
        runs=$((runs + 1))
        say "http_bench: in-process coll_search on $t thread(s), ${secs} s"
        rm -rf "$tmp/inproc"
        cand=$("$build/bench/search_inproc" -S "$tmp/inproc" -Q "$tmp/queries.jsonl" -t "$t" \
            -s "$secs" -d "$dim" "$tmp"/batches/batch-*.json 2>"$tmp/inproc.log") ||
            { cat "$tmp/inproc.log" >&2; die "search_inproc failed"; }
        other=$(awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                       o = v["cpu_machine"] - v["cpu_self"]; printf "%.2f", o < 0 ? 0 : o }' <<<"$cand")
        if [ -z "$keep" ] || awk -v a="$other" -v b="$keep_other" 'BEGIN { exit !(a < b) }'; then
            keep=$cand keep_other=$other
        fi
        disturbed "$keep_other" && [ $runs -le "$retries" ] || break
    done
    inproc+="$keep runs=$runs"$'\n'
done
ip_val() { grep "^INPROC threads=$1 " <<<"$inproc" | grep -o "$2=[0-9.]*" | cut -d= -f2; }
ip_qps() { ip_val "$1" qps; }

# ---- report --------------------------------------------------------------
runs_note() { [ "$1" -le 1 ] || echo " (least disturbed of $1 runs)"; }
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
best() { # workers -> "qps threads conns" of its best wrk run
    local want=$1 b="0 - -" r
    for r in "${rows[@]}"; do
        set -- $r
        [ "$1" = "$want" ] || continue
        awk -v a="$4" -v b="${b%% *}" 'BEGIN { exit !(a > b) }' && b="$4 $2 $3"
    done
    echo "$b"
}

nproc_=$(nproc)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && commit+=" (with uncommitted changes)"

report=$tmp/report.md
{
    echo "# Query-node load benchmark"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $nproc_ cores (nproc), $cpu; $(uname -sr); load average at start $load0"
    echo "- commit: $commit"
    echo "- command: \`$cmd\`"
    echo "- data: $points points, d=$dim, Cosine, seed $seed (64 clusters, sd 0.15); $nq query vectors; loaded over HTTP in ${load_s} s"
    echo "- requests: POST /collections/$coll/points/query {\"query\": [128 floats], \"limit\": 10} (exact k-NN), ${secs} s per row, wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}') on the same machine"
    echo
    echo "| server workers | wrk threads | connections | QPS | p50 ms | p99 ms | CPU cores: server / wrk / other |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | :--- |"
    for r in "${rows[@]}"; do
        set -- $r
        bad=""
        [ "$7" = 0 ] && [ "$8" = 0 ] || bad=" ($7 non-2xx, $8 errors)"
        printf '| %s | %s | %s | %.0f%s | %s | %s | %s / %s / %s%s |\n' "$1" "$2" "$3" "$4" "$bad" \
            "$(ms "$5")" "$(ms "$6")" "$9" "${10}" "${11}" "$(runs_note "${12}")"
    done
    for t in 1 2; do
        self=$(ip_val "$t" cpu_self) mach=$(ip_val "$t" cpu_machine)
        printf '| in-process | %s search thread%s | - | %.0f | %s | %s | %s / - / %s%s |\n' "$t" \
            "$([ "$t" = 1 ] || echo s)" "$(ip_val "$t" qps)" "$(ms "$(ip_val "$t" p50_us)")" \
            "$(ms "$(ip_val "$t" p99_us)")" "$self" \
            "$(awk -v m="$mach" -v s="$self" 'BEGIN { o = m - s; printf "%.2f", o < 0 ? 0 : o }')" \
            "$(runs_note "$(ip_val "$t" runs)")"
    done
    echo
    echo "CPU columns: cores used during the row by the server process, by wrk, and by anything else on the machine (steal included); \"other\" well above 0 means the row was disturbed."
    echo
    declare -A bq
    for w in $workers_list; do
        read -r q bt bc <<<"$(best "$w")"
        bq[$w]=$q
        ip=$(ip_qps "$w" 2>/dev/null || true)
        [ -n "$ip" ] || continue
        echo "- HTTP / in-process at $w thread(s): $(ratio "$q" "$ip") (HTTP: $w worker(s), best wrk run -t$bt -c$bc, $(printf %.0f "$q") QPS; in-process $(printf %.0f "$ip") QPS)"
    done
    if [ -n "${bq[1]:-}" ] && [ -n "${bq[2]:-}" ]; then
        echo "- 2 workers / 1 worker over HTTP (best runs): $(ratio "${bq[2]}" "${bq[1]}")x"
        for tc in $matrix; do
            t=${tc%%:*} c=${tc##*:} q1="" q2=""
            for r in "${rows[@]}"; do
                set -- $r
                [ "$2 $3" = "$t $c" ] || continue
                [ "$1" = 1 ] && q1=$4
                [ "$1" = 2 ] && q2=$4
            done
            [ -n "$q1" ] && [ -n "$q2" ] && echo "  - at wrk -t$t -c$c: $(ratio "$q2" "$q1")x"
        done
    fi
    echo "- 2 threads / 1 thread in-process: $(ratio "$(ip_qps 2)" "$(ip_qps 1)")x"
    busy=0
    for r in "${rows[@]}"; do
        set -- $r
        awk -v o="${11}" 'BEGIN { exit !(o > 0.25) }' && busy=$((busy + 1))
    done
    for t in 1 2; do
        awk -v m="$(ip_val "$t" cpu_machine)" -v s="$(ip_val "$t" cpu_self)" \
            'BEGIN { exit !(m - s > 0.25) }' && busy=$((busy + 1))
    done
    [ "$busy" -eq 0 ] || echo "- WARNING: something else used more than 0.25 cores during $busy row(s): those numbers are disturbed; re-run on an idle machine"
} >"$report"

echo
cat "$report"
if [ -n "$out_md" ]; then
    mkdir -p "$(dirname "$out_md")"
    cp "$report" "$out_md"
    say "http_bench: wrote $out_md"
fi
[ "$failed" -eq 0 ] || die "some requests failed (see the table)"
