#!/usr/bin/env bash
# Control-plane benchmark: API key creation (POST /v1/admin/api-keys: one
# transaction with the insert, its audit record and the change notification,
# committed with fsync on) and lookup (GET /v1/admin/api-keys/{id}) with wrk
# against sluice-control and a local PostgreSQL started for the run.
# Prints a Markdown table and rewrites the control-plane section of
# docs/benchmarks.md (between the control-bench markers).
#   bash tests/bench/control.sh [BUILD_DIR]       (part of make bench)
# Environment: SLUICE_BENCH_DURATION [10], SLUICE_BENCH_NO_DOC=1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=$(cd "${1:-$root/build/release}" && pwd)
DURATION=${SLUICE_BENCH_DURATION:-10}
CONNS=${SLUICE_BENCH_CP_CONNS:-16}
DOC=$root/docs/benchmarks.md
tmp=$(mktemp -d /tmp/sluice-cpbench.XXXXXX)
chmod 755 "$tmp"
cp_pid=
cleanup() {
    [ -n "$cp_pid" ] && kill "$cp_pid" 2>/dev/null && wait "$cp_pid" 2>/dev/null
    bash "$root/tools/pg.sh" destroy "$tmp/pg" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

url=$(bash "$root/tools/pg.sh" start "$tmp/pg" 2>/dev/null | tail -1)
token="bench-$(openssl rand -hex 16)"
SLUICE_DATABASE_URL=$url SLUICE_MASTER_KEY=$(openssl rand -hex 32) SLUICE_BOOTSTRAP_TOKEN=$token \
    "$BUILD/controlplane/sluice-control" --listen 127.0.0.1:0 --log-level warn \
    >"$tmp/cp.out" 2>"$tmp/cp.err" &
cp_pid=$!
for _ in $(seq 100); do
    port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/cp.out" 2>/dev/null || true)
    [ -n "$port" ] && curl -fs "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
    sleep 0.1
done
[ -n "${port:-}" ] || { echo "control bench: sluice-control did not start" >&2; cat "$tmp/cp.err" >&2; exit 1; }
base=http://127.0.0.1:$port/v1/admin
auth="Authorization: Bearer $token"
ws=$(curl -fs "$base/workspaces" -H "$auth" -d '{"name":"bench"}' | python3 -c 'import sys,json; print(json.load(sys.stdin)["id"])')
key=$(curl -fs "$base/api-keys" -H "$auth" -d "{\"name\":\"lookup\",\"workspace_id\":\"$ws\"}" | python3 -c 'import sys,json; print(json.load(sys.stdin)["id"])')

cat >"$tmp/create.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"name":"bench-key","workspace_id":"$ws","rate_limits":{"rpm":600},"allowed_models":["gpt-4o-mini"]}'
LUA
cat >"$tmp/get.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
LUA
report=$(mktemp)
run() { # id label script url
    local out="$tmp/$1.out" rps p50 p99 non2xx
    wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$3" "$4" >"$out" 2>&1
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    p50=$(awk '$1 == "50%" {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$out")
    printf '| %s | %.0f | %s | %s | %s |\n' "$2" "$rps" "$p50" "$p99" "${non2xx:-0}" >>"$report"
    echo "$rps"
}
echo "control bench: ${DURATION}s per run, $CONNS connections" >&2
create_rps=$(run create "create API key (POST /v1/admin/api-keys)" "$tmp/create.lua" "$base/api-keys")
lookup_rps=$(run lookup "look up API key (GET /v1/admin/api-keys/{id})" "$tmp/get.lua" "$base/api-keys/$key")
kill -0 "$cp_pid" || { echo "control bench: sluice-control died" >&2; exit 1; }

verdict() { awk -v r="$1" 'BEGIN { print (r >= 2000 ? "met" : "MISSED") }'; }
section=$(cat <<MD
<!-- control-bench:start -->
### Control plane (latest run)

\`bash tests/bench/control.sh build/release\` (part of \`make bench\`), $(date -u +%Y-%m-%d), wrk -t2 -c$CONNS
-d${DURATION}s on loopback; sluice-control (release, 8 threads) and PostgreSQL 15 (local, fsync on)
share this machine's 2 cores with wrk.

| route | req/s | p50 | p99 | non-2xx |
|---|---|---|---|---|
$(cat "$report")

Target: key creation and lookup ≥ 2,000 req/s each: creation **$(verdict "$create_rps")**,
lookup **$(verdict "$lookup_rps")**.
<!-- control-bench:end -->
MD
)
echo "$section"
if [ "${SLUICE_BENCH_NO_DOC:-0}" != 1 ] && [ -f "$DOC" ]; then
    python3 - "$DOC" "$section" <<'PY'
import re, sys
path, section = sys.argv[1], sys.argv[2]
doc = open(path).read()
pat = re.compile(r"<!-- control-bench:start -->.*?<!-- control-bench:end -->", re.S)
doc = pat.sub(lambda m: section, doc) if pat.search(doc) else doc.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(doc)
PY
    echo "control bench: wrote $DOC" >&2
fi
rm -f "$report"
