#!/usr/bin/env bash
# A PostgreSQL server of our own for the metrics store: Debian's package, our own data dir
# (under the state dir) and port on 127.0.0.1. Idempotent: installs, initialises and starts
# only what is missing. Prints the connection URL on its last line.
#
#   bash infra/postgres.sh          # install if needed, start
#   bash infra/postgres.sh stop     # stop our server (the data stays)
set -euo pipefail
cd "$(dirname "$0")/.."
STATE_DIR="${MLSTREAM_STATE_DIR:-$PWD/.mlstream}"
PGPORT="${MLSTREAM_POSTGRES_PORT:-55432}"
DATA="$STATE_DIR/postgres/data"
LOG="$STATE_DIR/logs/postgres.log"
URL="postgresql://mlstream@127.0.0.1:$PGPORT/mlstream"

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "PostgreSQL is missing; install Debian's package: sudo apt-get install -y postgresql" >&2
        exit 1
    fi
    echo "== installing Debian's postgresql (first run only)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
BIN="$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")"

# PostgreSQL refuses to run as root: run it as the package's 'postgres' user.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

mkdir -p "$STATE_DIR/postgres" "$STATE_DIR/logs"
if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$STATE_DIR/postgres"
    if ! runuser -u postgres -- test -w "$STATE_DIR/postgres"; then
        # A checkout under a private directory (e.g. /root) is closed to the postgres user:
        # keep the data beside the system's, one folder per checkout.
        DATA="/var/lib/postgresql/mlstream-$(printf '%s' "$STATE_DIR" | sha1sum | cut -c1-12)/data"
        LOG="$(dirname "$DATA")/postgres.log"
        mkdir -p "$(dirname "$DATA")"
        chown postgres "$(dirname "$DATA")"
        echo "== $STATE_DIR is closed to the postgres user; PostgreSQL data in $DATA" >&2
    fi
fi
if [ "${1:-start}" = "stop" ]; then
    [ -f "$DATA/postmaster.pid" ] && as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2 || true
    exit 0
fi

touch "$LOG"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$LOG"; fi
if [ ! -f "$DATA/PG_VERSION" ]; then
    echo "== initialising PostgreSQL in $DATA" >&2
    as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 >/dev/null
fi
if ! as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k /tmp" start >&2
fi
psql_do() { as_owner "$BIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -tAq "$@"; }
if [ "$(psql_do -c "SELECT 1 FROM pg_roles WHERE rolname='mlstream'")" != "1" ]; then
    psql_do -c "CREATE ROLE mlstream LOGIN"
fi
if [ "$(psql_do -c "SELECT 1 FROM pg_database WHERE datname='mlstream'")" != "1" ]; then
    psql_do -c "CREATE DATABASE mlstream OWNER mlstream"
fi
echo "$URL"
