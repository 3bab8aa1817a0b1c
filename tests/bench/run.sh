#!/usr/bin/env bash
# Sluice benchmark: the same small non-streaming chat request, at the same
# concurrency, against the mock provider directly, through nginx
# (proxy_pass, upstream keepalive) and through Sluice. Measures throughput,
# CPU per request, paced latency, gateway memory (idle, under load, with 1,000
# idle keep-alive connections) and per-chunk streaming delay, prints a
# Markdown table and rewrites the "Latest run" section of docs/benchmarks.md.
#
#   bash tests/bench/run.sh [BUILD_DIR]        (make bench: build/release)
#
# Environment (defaults in brackets):
#   SLUICE_BENCH_DURATION   seconds per wrk run [10]
#   SLUICE_BENCH_ROUNDS     rounds of the throughput and latency runs [2]
#   SLUICE_BENCH_NO_DOC=1   do not touch docs/benchmarks.md
#   SLUICE_BENCH_STRICT=1   exit 1 when a target is missed
#
# Everything listens on 127.0.0.1 and is stopped on exit, also on failure.
# Placement: Sluice and nginx on core 0, mock and load generators on core 1.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-build/release}
case $build in /*) ;; *) build=$root/$build ;; esac
GW=$build/dataplane/sluice-gateway
MOCK=$build/tests/mock_provider/mock_provider
DUR=${SLUICE_BENCH_DURATION:-10}
ROUNDS=${SLUICE_BENCH_ROUNDS:-2}
WARMUP=2
CONNS=64
PACE_MS=5
IDLE_CONNS=1000
STREAM_CHUNKS=1000
TTFT_N=200
DOC=$root/docs/benchmarks.md
COMMAND="bash tests/bench/run.sh ${1:-build/release}"

die() { echo "bench: $*" >&2; exit 1; }
[ -x "$GW" ] || die "no gateway at $GW (build it: make build)"
[ -x "$MOCK" ] || die "no mock provider at $MOCK (configure with -DSL_TESTS=ON)"
for t in wrk python3 curl taskset; do
    command -v "$t" >/dev/null || die "$t not found (tools/setup.sh installs it)"
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || die "nginx not found (tools/setup.sh installs nginx-light)"

if [ "$(nproc)" -ge 2 ]; then
    PIN_GW="taskset -c 0"
    PIN_LOAD="taskset -c 1"
    pinning="Sluice and nginx on core 0 (taskset -c 0); mock, wrk and the Python clients on core 1"
else
    PIN_GW=""
    PIN_LOAD=""
    pinning="none (fewer than 2 cores)"
    echo "bench: fewer than 2 cores, running unpinned" >&2
fi

tmp=$(mktemp -d /tmp/sluice-bench.XXXXXX)
pids=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    sleep 0.3
    for p in "${pids[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [ $rc -ne 0 ]; then
        echo "bench: failed (exit $rc); logs:" >&2
        for f in "$tmp"/*.log "$tmp"/nginx/error.log; do
            [ -s "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }
        done
    fi
    rm -rf "$tmp"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

results=$tmp/results.txt
: >"$results"
put() { echo "$1=$2" >>"$results"; }

# Starts "$@" in the background, waits for "listening on HOST:PORT" on its
# stdout and sets REPLY to the port and LAST_PID to its pid.
start_listener() {
    local name=$1
    shift
    "$@" >"$tmp/$name.out" 2>"$tmp/$name.log" &
    LAST_PID=$!
    pids+=("$LAST_PID")
    for _ in $(seq 100); do
        if grep -q "listening on" "$tmp/$name.out" 2>/dev/null; then
            REPLY=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\).*/\1/p' "$tmp/$name.out" | head -1)
            return 0
        fi
        kill -0 "$LAST_PID" 2>/dev/null || die "$name exited at start"
        sleep 0.1
    done
    die "$name did not start"
}

cpu_ticks() { # utime + stime (fields 14, 15) of each pid, summed
    local sum=0 p f
    for p in "$@"; do
        f=$(sed 's/^.*) //' "/proc/$p/stat")
        set -- $f
        sum=$((sum + ${12} + ${13}))
    done
    echo $sum
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# Machine-wide busy ticks (user nice system irq softirq steal) and all ticks.
stat_ticks() { head -1 /proc/stat | awk '{b=$2+$3+$4+$7+$8+$9; t=0; for (i=2; i<=9; i++) t+=$i; print b, t}'; }
# Sets CHILD_TICKS to the CPU ticks used by this shell's finished children
# (wrk, the Python clients). `times` must run in this shell, not in $(...).
child_ticks() {
    times >"$tmp/times"
    CHILD_TICKS=$(tail -1 "$tmp/times" | awk -v hz="$(getconf CLK_TCK)" '{
        s = 0
        for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] }
        printf "%d\n", s * hz + 0.5 }')
}

check_alive() {
    kill -0 "$GW_PID" 2>/dev/null || die "sluice-gateway died (log: $(tail -5 "$tmp/gateway.log"))"
    kill -0 "$MOCK_PID" 2>/dev/null || die "mock_provider died"
    kill -0 "$NGINX_PID" 2>/dev/null || die "nginx died"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- start everything ------------------------------------------------------
echo "bench: starting mock, nginx, sluice ($build)" >&2
start_listener mock $PIN_LOAD "$MOCK" --port 0 --no-record --quiet
MOCK_PORT=$REPLY
MOCK_PID=$LAST_PID
MOCK_BASE=http://127.0.0.1:$MOCK_PORT

start_listener gateway $PIN_GW "$GW" --listen 127.0.0.1:0 --workers 1 --log-level warn
GW_PORT=$REPLY
GW_PID=$LAST_PID

NGINX_PORT=$(free_port)
NGINX_STREAM_PORT=$(free_port)
mkdir -p "$tmp/nginx/logs"
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
user root;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path $tmp/nginx/client_body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    upstream mock {
        server 127.0.0.1:$MOCK_PORT;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT reuseport;
        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
    # Streaming baseline only: SSE through nginx needs proxy_buffering off.
    server {
        listen 127.0.0.1:$NGINX_STREAM_PORT;
        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
EOF
$PIN_GW "$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" \
    >"$tmp/nginx.log" 2>&1 &
NGINX_PID=$!
pids+=("$NGINX_PID")
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/" 2>/dev/null && break
    kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited at start"
    sleep 0.1
done
NGINX_WORKERS=$(pgrep -P "$NGINX_PID" | tr '\n' ' ')
[ -n "$NGINX_WORKERS" ] || die "no nginx worker process"
pids+=($NGINX_WORKERS)

declare -A URL=(
    [direct]=http://127.0.0.1:$MOCK_PORT/v1/chat/completions
    [nginx]=http://127.0.0.1:$NGINX_PORT/v1/chat/completions
    [sluice]=http://127.0.0.1:$GW_PORT/v1/chat/completions
)
TARGETS=(direct nginx sluice)

# Every path must answer the request the benchmark sends.
for t in "${TARGETS[@]}"; do
    code=$(curl -s -o "$tmp/probe.json" -w '%{http_code}' "${URL[$t]}" \
        -H 'Content-Type: application/json' -H 'Authorization: Bearer sk-bench' \
        -H 'x-sluice-provider: openai' -H "x-sluice-custom-host: $MOCK_BASE/v1" \
        -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello, how are you?"}],"max_tokens":32}')
    [ "$code" = 200 ] || die "$t answered $code: $(head -c 300 "$tmp/probe.json")"
done

# ---- metadata --------------------------------------------------------------
put date "$(date -u '+%Y-%m-%d %H:%M UTC')"
put commit "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD -- dataplane common 2>/dev/null || echo ' + uncommitted changes')"
put cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
put cores "$(nproc)"
put kernel "$(uname -r)"
put wrk_version "$(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
put nginx_version "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
put clk_tck "$(getconf CLK_TCK)"
put duration_s "$DUR"
put rounds "$ROUNDS"
put paced_rate "$((1000 / PACE_MS))"
put pinning "$pinning"
put loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- memory at rest ----------------------------------------------------------
sleep 0.5
put rss.idle_kb "$(rss_kb "$GW_PID")"

export BENCH_MOCK_BASE=$MOCK_BASE

run_wrk() { # prefix url args... ; appends prefix.key=value results
    local prefix=$1 url=$2
    shift 2
    $PIN_LOAD wrk "$@" -s "$here/bench.lua" "$url" >"$tmp/wrk.out" 2>&1 || {
        cat "$tmp/wrk.out" >&2
        die "wrk failed against $url"
    }
    local line
    line=$(grep '^BENCH ' "$tmp/wrk.out") || { cat "$tmp/wrk.out" >&2; die "no BENCH line from wrk"; }
    for kv in ${line#BENCH }; do
        put "$prefix.${kv%%=*}" "${kv#*=}"
    done
    echo "$line"
}

# ---- throughput and CPU per request ---------------------------------------
# ROUNDS rounds, each path in turn; the report keeps each path's best round
# (other work on the machine only ever slows a run down).
: >"$tmp/rss.samples"
for round in $(seq "$ROUNDS"); do
    for t in "${TARGETS[@]}"; do
        echo "bench: round $round/$ROUNDS: throughput $t (${WARMUP}s warm-up, ${DUR}s)" >&2
        check_alive
        $PIN_LOAD wrk -t1 -c$CONNS -d${WARMUP}s -s "$here/bench.lua" "${URL[$t]}" >"$tmp/wrk.out" 2>&1 ||
            { cat "$tmp/wrk.out" >&2; die "warm-up against $t failed"; }
        case $t in
            nginx) cpu_pids="$NGINX_PID $NGINX_WORKERS" ;;
            sluice) cpu_pids=$GW_PID ;;
            *) cpu_pids= ;;
        esac
        sampler=
        if [ "$t" = sluice ]; then
            # Sample the gateway's RSS while the load runs.
            (while kill -0 "$GW_PID" 2>/dev/null; do rss_kb "$GW_PID"; sleep 0.2; done) \
                >>"$tmp/rss.samples" &
            sampler=$!
            pids+=("$sampler")
        fi
        # Everything ours is accounted for; what is left of the machine's busy
        # time went to other work (the "foreign" share reported per round).
        before=0
        [ -n "$cpu_pids" ] && before=$(cpu_ticks $cpu_pids)
        mock0=$(cpu_ticks "$MOCK_PID")
        child_ticks
        child0=$CHILD_TICKS
        read -r busy0 all0 < <(stat_ticks)
        run_wrk "tput.r$round.$t" "${URL[$t]}" -t1 -c$CONNS -d${DUR}s >&2
        read -r busy1 all1 < <(stat_ticks)
        proxy=0
        [ -n "$cpu_pids" ] && proxy=$(($(cpu_ticks $cpu_pids) - before))
        [ -n "$cpu_pids" ] && put "cpu.r$round.$t.ticks" "$proxy"
        child_ticks
        ours=$((proxy + $(cpu_ticks "$MOCK_PID") - mock0 + CHILD_TICKS - child0))
        foreign=$((busy1 - busy0 - ours))
        [ $foreign -lt 0 ] && foreign=0
        put "tput.r$round.$t.foreign_pct" "$((100 * foreign / (all1 - all0 > 0 ? all1 - all0 : 1)))"
        if [ -n "$sampler" ]; then
            kill "$sampler" 2>/dev/null || true
            wait "$sampler" 2>/dev/null || true
        fi
    done
done
put rss.load_max_kb "$(sort -n "$tmp/rss.samples" | tail -1)"

# ---- paced latency (one connection, 200 req/s) ----------------------------
for round in $(seq "$ROUNDS"); do
    for t in "${TARGETS[@]}"; do
        check_alive
        echo "bench: round $round/$ROUNDS: paced latency $t (1 connection, $((1000 / PACE_MS)) req/s, ${DUR}s)" >&2
        if [ "$t" = sluice ]; then
            BENCH_PACE_MS=$PACE_MS BENCH_OVERHEAD=1 run_wrk "paced.r$round.$t" "${URL[$t]}" -t1 -c1 -d${DUR}s >&2
        else
            BENCH_PACE_MS=$PACE_MS run_wrk "paced.r$round.$t" "${URL[$t]}" -t1 -c1 -d${DUR}s >&2
        fi
    done
done

# ---- provider translation (Anthropic) ------------------------------------------
# The same paced OpenAI request through Sluice to the mock's Anthropic
# Messages endpoint (translated both ways), against the OpenAI passthrough
# above; then time to first token of a stream, Anthropic upstream translated
# to OpenAI chunks, against the same stream read from the mock directly.
for round in $(seq "$ROUNDS"); do
    check_alive
    echo "bench: round $round/$ROUNDS: paced latency sluice_anthropic (translated)" >&2
    BENCH_PROVIDER=anthropic BENCH_PACE_MS=$PACE_MS BENCH_OVERHEAD=1 \
        run_wrk "paced.r$round.sluice_anthropic" "${URL[sluice]}" -t1 -c1 -d${DUR}s >&2
done
# A 3-target fallback config whose first target (the mock) answers, against
# the same request routed by headers alone.
FALLBACK_CONFIG="{\"strategy\":{\"mode\":\"fallback\",\"on_status_codes\":[429,500,502,503]},\"targets\":[{\"provider\":\"openai\",\"api_key\":\"sk-bench\",\"custom_host\":\"$MOCK_BASE/v1\"},{\"provider\":\"openai\",\"api_key\":\"sk-bench\",\"custom_host\":\"http://127.0.0.1:9/v1\"},{\"provider\":\"groq\",\"api_key\":\"sk-bench\"}]}"
for round in $(seq "$ROUNDS"); do
    check_alive
    echo "bench: round $round/$ROUNDS: paced latency sluice_fallback (3-target config)" >&2
    BENCH_CONFIG=$FALLBACK_CONFIG BENCH_PACE_MS=$PACE_MS BENCH_OVERHEAD=1 \
        run_wrk "paced.r$round.sluice_fallback" "${URL[sluice]}" -t1 -c1 -d${DUR}s >&2
done
check_alive
echo "bench: time to first token, Anthropic stream direct and translated" >&2
$PIN_LOAD python3 "$here/bench.py" ttft --gw-port "$GW_PORT" --mock-base "$MOCK_BASE" \
    --n "$TTFT_N" >>"$results"

# ---- 1,000 idle keep-alive connections --------------------------------------
check_alive
echo "bench: $IDLE_CONNS idle keep-alive connections" >&2
sleep 1
$PIN_LOAD python3 "$here/bench.py" idleconns --port "$GW_PORT" --pid "$GW_PID" --n $IDLE_CONNS \
    >>"$results"

# ---- streaming delay ---------------------------------------------------------
echo "bench: streaming, $STREAM_CHUNKS chunks 1 ms apart" >&2
put stream.chunks "$STREAM_CHUNKS"
declare -A STREAM_PORT=([direct]="$MOCK_PORT" [nginx]="$NGINX_STREAM_PORT" [sluice]="$GW_PORT")
for round in $(seq "$ROUNDS"); do
    for t in "${TARGETS[@]}"; do
        check_alive
        echo "bench: round $round/$ROUNDS: stream $t" >&2
        $PIN_LOAD python3 "$here/bench.py" stream --port "${STREAM_PORT[$t]}" \
            --mock-base "$MOCK_BASE" --chunks $STREAM_CHUNKS --prefix "stream.r$round.$t." \
            >>"$results"
    done
done

# Everything must still be running after all this.
check_alive

put loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- report ------------------------------------------------------------------
doc_arg=(--doc "$DOC")
[ "${SLUICE_BENCH_NO_DOC:-0}" = 1 ] && doc_arg=()
python3 "$here/bench.py" report --results "$results" "${doc_arg[@]}" --command "$COMMAND" \
    --missed-file "$tmp/missed"
[ "${SLUICE_BENCH_NO_DOC:-0}" = 1 ] || echo "bench: wrote $DOC" >&2
if [ -s "$tmp/missed" ] && [ "${SLUICE_BENCH_STRICT:-0}" = 1 ]; then
    exit 1
fi
exit 0
