#!/usr/bin/env bash
# `make run`: PostgreSQL (an embedded server under build/run/pg unless
# SLUICE_DATABASE_URL points at one), sluice-control on 127.0.0.1:8790 (its
# snapshots for gateways on 8791/8792) and sluice-gateway on 127.0.0.1:8787,
# connected to it, in the foreground. Ctrl-C stops all three.
# SLUICE_STANDALONE=1 runs the header-driven gateway alone.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
LISTEN=${LISTEN:-127.0.0.1:8787}
ADMIN=${SLUICE_CONTROL_LISTEN:-127.0.0.1:8790}
STATE=build/run

say_gateway() {
    echo "sluice-gateway on http://$LISTEN (header-driven requests work too). Try:"
    echo "  curl http://$LISTEN/v1/chat/completions -H 'x-sluice-provider: openai' \\"
    echo "    -H \"Authorization: Bearer \$OPENAI_API_KEY\" -H 'content-type: application/json' \\"
    echo "    -d '{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}'"
}

if [ "${SLUICE_STANDALONE:-0}" = 1 ]; then
    say_gateway
    exec "$BUILD/dataplane/sluice-gateway" --listen "$LISTEN"
fi

mkdir -p "$STATE"
started_pg=0
if [ -z "${SLUICE_DATABASE_URL:-}" ]; then
    SLUICE_DATABASE_URL=$(bash tools/pg.sh start "$STATE/pg" | tail -1)
    started_pg=1
    echo "PostgreSQL (embedded, $STATE/pg) at $SLUICE_DATABASE_URL"
fi
export SLUICE_DATABASE_URL
# Generated once and kept: the master key seals provider credentials, so
# losing it loses them.
[ -s "$STATE/master.key" ] || (umask 077 && openssl rand -hex 32 > "$STATE/master.key")
[ -s "$STATE/bootstrap.token" ] ||
    (umask 077 && echo "sk-sluice-admin-$(openssl rand -hex 32)" > "$STATE/bootstrap.token")
# Snapshot signing key (the control plane's) and data-plane key (shared by
# both: it seals provider credentials inside snapshots).
[ -s "$STATE/signing.key" ] || (umask 077 && openssl rand -hex 32 > "$STATE/signing.key")
[ -s "$STATE/dataplane.key" ] || (umask 077 && openssl rand -hex 32 > "$STATE/dataplane.key")
export SLUICE_MASTER_KEY_FILE="$STATE/master.key"
export SLUICE_SNAPSHOT_SIGNING_KEY_FILE="$STATE/signing.key"
export SLUICE_DATAPLANE_KEY_FILE="$STATE/dataplane.key"
SLUICE_SNAPSHOT_PUBLIC_KEY=$("$BUILD/controlplane/sluice-control" public-key)
export SLUICE_SNAPSHOT_PUBLIC_KEY
SLUICE_BOOTSTRAP_TOKEN=$(cat "$STATE/bootstrap.token")
export SLUICE_BOOTSTRAP_TOKEN

SNAP=${SLUICE_SNAPSHOT_LISTEN:-tcp://127.0.0.1:8791}
"$BUILD/controlplane/sluice-control" --listen "$ADMIN" --snapshot-listen "$SNAP" >/dev/null &
cp_pid=$!
gw_pid=
cleanup() {
    [ -n "$gw_pid" ] && kill "$gw_pid" 2>/dev/null && wait "$gw_pid" 2>/dev/null
    kill "$cp_pid" 2>/dev/null && wait "$cp_pid" 2>/dev/null
    [ $started_pg = 1 ] && bash tools/pg.sh stop "$STATE/pg" >/dev/null 2>&1
    return 0
}
trap cleanup EXIT INT TERM
for _ in $(seq 100); do
    curl -fs "http://$ADMIN/ready" >/dev/null 2>&1 && break
    kill -0 "$cp_pid" 2>/dev/null || { echo "sluice-control failed to start" >&2; exit 1; }
    sleep 0.1
done
cat <<MSG

sluice-control admin API on http://$ADMIN/v1/admin (OpenAPI: /v1/admin/openapi.json)
sluice-gateway on http://$LISTEN, serving what the control plane allows. Try:

  export TOKEN=\$(cat $STATE/bootstrap.token)       # the bootstrap owner token
  A="http://$ADMIN/v1/admin"; H="Authorization: Bearer \$TOKEN"
  WS=\$(curl -s \$A/workspaces -H "\$H" -d '{"name":"default"}' | sed 's/.*"id":"\\([^"]*\\)".*/\\1/')
  VK=\$(curl -s \$A/virtual-keys -H "\$H" -d '{"name":"openai","provider":"openai","workspace_id":"'\$WS'","credentials":{"api_key":"'\$OPENAI_API_KEY'"}}' | sed 's/.*"id":"\\(vk_[^"]*\\)".*/\\1/')
  KEY=\$(curl -s \$A/api-keys -H "\$H" -d '{"name":"my-app","workspace_id":"'\$WS'"}' | sed 's/.*"key":"\\([^"]*\\)".*/\\1/')
  curl http://$LISTEN/v1/chat/completions -H "Authorization: Bearer \$KEY" -H "x-sluice-virtual-key: \$VK" \\
    -H 'content-type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'

MSG
# In the background and waited for, so that a SIGTERM to this script runs
# the clean-up at once (bash runs traps only between commands).
"$BUILD/dataplane/sluice-gateway" --listen "$LISTEN" --control "$SNAP" \
    --snapshot-file "$STATE/gateway.snapshot" --node-id local-gateway &
gw_pid=$!
wait "$gw_pid"
