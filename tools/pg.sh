#!/usr/bin/env bash
# A private PostgreSQL server for development and tests (`make run`, `make test`,
# tests/integration/pgserver.py): one cluster per folder DIR, listening only on
# 127.0.0.1, on its own port, with no system service and nothing under /var/run.
#
#   tools/pg.sh start DIR [PORT]   init DIR/data if needed, start, print the URL (last line)
#   tools/pg.sh stop DIR           fast shutdown (no-op when not running)
#   tools/pg.sh url DIR            print the URL of the running server
#   tools/pg.sh status DIR         "running ..." (exit 0) or "stopped" (exit 3)
#   tools/pg.sh destroy DIR        stop, then delete the cluster (and its /tmp fallback)
#
# Layout of DIR: data/ (the cluster), run/ (its Unix socket), log (server log),
# port (the port, reused by the next start), .lock (serialises start/stop/destroy).
#
# Why the user juggling: initdb, pg_ctl and postgres refuse to run as root, and
# we run as root in containers and CI. So as root every server command runs as
# the `postgres` system user (created by the Debian package) through runuser,
# and data/, run/ and log belong to that user. That user must be able to reach
# DIR; when it cannot (DIR under /root, say), data/, run/ and log live in a
# mktemp folder under /tmp instead and DIR holds symlinks to them.
#
# Environment: SLUICE_PG_BINDIR (the server binaries; default: the newest
# /usr/lib/postgresql/*/bin), SLUICE_PG_FSYNC (on|off, default on: benchmarks
# must measure real commits; off only for throwaway test clusters).
set -euo pipefail

PG_USER=postgres
START_TIMEOUT=60

die() { echo "pg.sh: $*" >&2; exit 1; }
note() { echo "pg.sh: $*" >&2; }

usage() {
    sed -n '6,10s/^#   //p' "$0" >&2
    exit 2
}

find_bindir() {
    if [[ -n "${SLUICE_PG_BINDIR:-}" ]]; then
        [[ -x "$SLUICE_PG_BINDIR/pg_ctl" ]] || die "no pg_ctl in SLUICE_PG_BINDIR=$SLUICE_PG_BINDIR"
        echo "$SLUICE_PG_BINDIR"; return
    fi
    local d
    # Newest major version first (sort -V: 9.6 < 10 < 15 < 16).
    for d in $(compgen -G '/usr/lib/postgresql/*/bin' | sort -rV); do
        if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then echo "$d"; return; fi
    done
    die "no PostgreSQL server found in /usr/lib/postgresql/*/bin (apt-get install postgresql)"
}

# Run a server command as the owner of the cluster: the postgres user when we
# are root (initdb/pg_ctl refuse root), ourselves otherwise. From / so that an
# unreadable working directory (/root) does not upset the tools.
as_pg() {
    if (( EUID == 0 )); then
        (cd / && runuser -u "$PG_USER" -- "$@")
    else
        (cd / && "$@")
    fi
}

# Give a path we created to the cluster owner (only needed as root).
own() {
    if (( EUID == 0 )); then chown "$PG_USER:" "$@"; fi
}

# Can the cluster owner reach (traverse) folder $1?
reachable() {
    if (( EUID == 0 )); then
        (cd / && runuser -u "$PG_USER" -- test -x "$1" -a -r "$1") 2>/dev/null
    else
        test -x "$1" -a -r "$1"
    fi
}

port_free() {
    if command -v python3 >/dev/null; then
        python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
    else
        # Nobody answering is the best bash alone can tell.
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 1; fi
    fi
}

pick_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
        return
    fi
    local p i
    for i in $(seq 50); do
        p=$(( 20000 + RANDOM % 40000 ))
        if port_free "$p"; then echo "$p"; return; fi
    done
    die "no free port found"
}

# The pid of the postmaster of $DATA if it is really running, else nothing.
# Not `pg_ctl status`: that only does kill(pid, 0), which also succeeds for a
# zombie (a SIGKILLed postmaster stays one where PID 1 reaps nothing, as in
# some containers) and for an unrelated process that reused the pid. The
# postmaster's command line (world-readable, empty for zombies) names its
# data folder: pg_ctl starts it as `postgres -D DATA`.
pm_pid() {
    local pid
    [[ -f "$DATA/postmaster.pid" ]] || return 0
    pid=$(head -n1 "$DATA/postmaster.pid" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    if tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$DATA"; then
        echo "$pid"
    fi
}

# After a crash of the postmaster (kill -9), its children notice within
# moments and exit; until then they hold the shared memory segment and a new
# postmaster refuses to start ("pre-existing shared memory block is still in
# use"). Wait for them, then drop the stale postmaster.pid and socket lock
# file: postgres would refuse both while their pid is a zombie or someone
# else's process (kill(pid, 0) succeeds).
clear_stale_pid() {
    local shmid i n
    [[ -f "$DATA/postmaster.pid" ]] || return 0
    shmid=$(sed -n '7p' "$DATA/postmaster.pid" 2>/dev/null | awk '{print $2}')
    if [[ "$shmid" =~ ^[0-9]+$ ]] && [[ -r /proc/sysvipc/shm ]]; then
        for (( i = 0; i < 300; i++ )); do
            n=$(awk -v id="$shmid" '$2 == id { print $7 }' /proc/sysvipc/shm)
            [[ -z "$n" || "$n" == 0 ]] && break
            if (( i == 0 )); then note "waiting for the old server processes of $DATA to exit"; fi
            sleep 0.1
        done
        [[ -z "$n" || "$n" == 0 ]] || note "old server processes still attached to shared memory $shmid"
    fi
    rm -f "$DATA/postmaster.pid"
    # Same for the socket's lock file, which names the dead postmaster too.
    # The run folder is this cluster's alone.
    rm -f "$(readlink -f "$DIR/run")"/.s.PGSQL.*
}

url_for() { echo "postgresql://postgres@127.0.0.1:$1/postgres"; }

# The port of the running server, from its postmaster.pid (line 4).
running_port() { sed -n '4p' "$DATA/postmaster.pid"; }

# Create DIR/data, DIR/run and DIR/log, or symlinks to them under /tmp when the
# cluster owner cannot reach DIR.
make_layout() {
    local home="$DIR"
    local f
    # Symlinks left from an earlier fallback whose /tmp folder is gone
    # (a reboot): start afresh.
    if [[ -L "$DIR/data" && ! -e "$DIR/data" ]]; then
        for f in data run log; do if [[ -L "$DIR/$f" ]]; then rm -f "$DIR/$f"; fi; done
    fi
    if [[ ! -e "$DIR/data" ]]; then
        if ! reachable "$DIR"; then
            home=$(mktemp -d /tmp/sluice-pg.XXXXXX)
            chmod 755 "$home"
            note "user $PG_USER cannot reach $DIR; the cluster lives in $home (symlinked from $DIR)"
            rm -rf "$DIR/run" "$DIR/log"
            mkdir "$home/data"
            ln -s "$home/data" "$DIR/data"
            ln -s "$home/run" "$DIR/run"
            ln -s "$home/log" "$DIR/log"
        else
            mkdir "$DIR/data"
        fi
        own "$home/data"
        chmod 700 "$home/data"
    fi
    [[ -d "$DIR/run" ]] || { mkdir -p "$(readlink -f "$DIR/run")"; own "$(readlink -f "$DIR/run")"; }
    [[ -e "$DIR/log" ]] || { touch "$(readlink -f "$DIR/log")"; own "$(readlink -f "$DIR/log")"; }
}

init_cluster() {
    if [[ ! -f "$DATA/PG_VERSION" ]]; then
        if [[ -n "$(ls -A "$DATA")" ]]; then
            die "$DATA is neither empty nor a cluster (an interrupted initdb?); remove it"
        fi
        note "initdb $DATA"
        as_pg "$BINDIR/initdb" -D "$DATA" -A trust -U postgres -E UTF8 --no-locale >/dev/null \
            || die "initdb failed"
    fi
    # Our settings live in sluice.conf, rewritten at every start; ALTER SYSTEM
    # (postgresql.auto.conf, read last) still overrides them.
    if ! grep -q "^include_if_exists = 'sluice.conf'" "$DATA/postgresql.conf"; then
        printf "\n# Settings of tools/pg.sh\ninclude_if_exists = 'sluice.conf'\n" >>"$DATA/postgresql.conf"
    fi
}

write_conf() {
    local port=$1 run sockdirs fsync=${SLUICE_PG_FSYNC:-on}
    [[ "$fsync" == on || "$fsync" == off ]] || die "SLUICE_PG_FSYNC must be on or off"
    run=$(readlink -f "$DIR/run")
    sockdirs="$run"
    # A Unix socket path is limited to 107 bytes; a deep build tree can exceed
    # it. Clients use TCP (the URL), so go without a socket then.
    if (( ${#run} + 18 > 107 )); then
        note "$run is too long for a Unix socket path; TCP only"
        sockdirs=""
    fi
    cat >"$DATA/sluice.conf" <<EOF
# Written by tools/pg.sh at every start: a private dev/test server.
listen_addresses = '127.0.0.1'
port = $port
# Our own socket folder: nothing needs /var/run/postgresql.
unix_socket_directories = '$sockdirs'
shared_buffers = 128MB
max_connections = 200
# On by default: the control-plane benchmark must measure real commits.
fsync = $fsync
synchronous_commit = $fsync
full_page_writes = $fsync
EOF
    own "$DATA/sluice.conf"
}

cmd_start() {
    local want_port=${1:-} port log logsize tries=0
    make_layout
    DATA=$(readlink -f "$DIR/data")
    init_cluster
    if [[ -n "$(pm_pid)" ]]; then
        note "already running"
        url_for "$(running_port)"
        return
    fi
    clear_stale_pid
    log=$(readlink -f "$DIR/log")
    while :; do
        if [[ -n "$want_port" ]]; then
            port=$want_port
        elif [[ -f "$DIR/port" ]] && port_free "$(cat "$DIR/port")"; then
            port=$(cat "$DIR/port")   # the same URL as last time
        else
            port=$(pick_port)
        fi
        write_conf "$port"
        echo "$port" >"$DIR/port"
        logsize=$(stat -c %s "$log")
        # 9>&-: the postmaster must not inherit the lock, or it would hold it
        # for its whole life and the next start/stop would wait for it.
        if as_pg "$BINDIR/pg_ctl" start -D "$DATA" -l "$log" -w -t "$START_TIMEOUT" -s 9>&- >&2; then
            break
        fi
        # A port picked free can be taken before the postmaster binds it.
        if [[ -z "$want_port" ]] && (( ++tries < 3 )) &&
            tail -c +"$((logsize + 1))" "$log" | grep -q 'could not bind\|Address already in use'; then
            note "port $port taken meanwhile; trying another"
            rm -f "$DIR/port"
            continue
        fi
        tail -n 20 "$log" >&2
        die "could not start the server in $DATA (log: $log)"
    done
    url_for "$port"
}

cmd_stop() {
    [[ -e "$DIR/data" ]] || return 0
    DATA=$(readlink -f "$DIR/data")
    if [[ -z "$(pm_pid)" ]]; then
        [[ -f "$DATA/postmaster.pid" ]] && clear_stale_pid
        return 0
    fi
    as_pg "$BINDIR/pg_ctl" stop -D "$DATA" -m fast -w -t "$START_TIMEOUT" -s 9>&- >&2
}

cmd_destroy() {
    local f t
    cmd_stop
    for f in data run log; do
        if [[ -L "$DIR/$f" ]]; then
            t=$(readlink "$DIR/$f")
            # Only a fallback folder that we made.
            case "$t" in /tmp/sluice-pg.*/*) rm -rf "$(dirname "$t")" ;; esac
            rm -f "$DIR/$f"
        else
            rm -rf "${DIR:?}/$f"
        fi
    done
    rm -f "$DIR/port"
}

running_or_die() {
    [[ -e "$DIR/data" ]] || die "no cluster in $DIR"
    DATA=$(readlink -f "$DIR/data")
    [[ -n "$(pm_pid)" ]] || die "not running ($DIR)"
}

(( $# >= 2 )) || usage
CMD=$1
DIR=$2
shift 2
case "$CMD" in
    start|stop|destroy) mkdir -p "$DIR" ;;
    url) [[ -d "$DIR" ]] || die "no such folder: $DIR" ;;
    status) [[ -d "$DIR" ]] || { echo stopped; exit 3; } ;;
    *) usage ;;
esac
DIR=$(readlink -f "$DIR")
BINDIR=$(find_bindir)
# Clean environment for the server tools: these would change their defaults.
unset PGDATA PGPORT PGHOST PGUSER PGDATABASE PGOPTIONS

case "$CMD" in
    start)
        (( $# <= 1 )) || usage
        if [[ -n "${1:-}" && ! "$1" =~ ^[0-9]+$ ]]; then die "bad port: $1"; fi
        exec 9>"$DIR/.lock"
        # A second start of the same DIR waits here, then finds it running.
        flock -w 120 9 || die "timed out waiting for the lock $DIR/.lock"
        cmd_start "${1:-}"
        ;;
    stop|destroy)
        exec 9>"$DIR/.lock"
        flock -w 120 9 || die "timed out waiting for the lock $DIR/.lock"
        "cmd_$CMD"
        ;;
    url)
        running_or_die
        url_for "$(running_port)"
        ;;
    status)
        pid=""
        if [[ -e "$DIR/data" ]]; then DATA=$(readlink -f "$DIR/data"); pid=$(pm_pid); fi
        if [[ -n "$pid" ]]; then
            echo "running (pid $pid, $(url_for "$(running_port)"))"
        else
            echo "stopped"
            exit 3
        fi
        ;;
esac
