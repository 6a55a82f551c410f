#!/usr/bin/env bash
# An S3-compatible server of our own for the S3 snapshot store: S3Proxy from Maven Central
# (pinned in infra/s3proxy/pom.xml) with its filesystem backend under the state dir, on
# 127.0.0.1 only. Idempotent: fetches and starts only what is missing. Prints the endpoint
# URL on its last line; the access key and secret are the ones below (local use only).
#
#   bash infra/s3proxy/s3proxy.sh          # fetch if needed, start
#   bash infra/s3proxy/s3proxy.sh stop     # stop our server (the objects stay)
set -euo pipefail
cd "$(dirname "$0")/../.."
STATE_DIR="${MLSTREAM_STATE_DIR:-$PWD/.mlstream}"
# The jars of the local services live there too (mlstream/settings.py has the same default).
CACHE_DIR="${MLSTREAM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mlstream}"
PORT="${MLSTREAM_S3PROXY_PORT:-58180}"
ACCESS_KEY="mlstream"
SECRET_KEY="mlstream-local-secret"
VERSION="$(sed -n 's:.*<s3proxy.version>\(.*\)</s3proxy.version>.*:\1:p' infra/s3proxy/pom.xml)"
JAR="$CACHE_DIR/lib/s3proxy-$VERSION/s3proxy-jar-with-dependencies.jar"
PIDFILE="$STATE_DIR/run/s3proxy.pid"
LOG="$STATE_DIR/logs/s3proxy.log"
URL="http://127.0.0.1:$PORT"

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

if [ "${1:-start}" = "stop" ]; then
    if running; then kill "$(cat "$PIDFILE")"; fi
    rm -f "$PIDFILE"
    exit 0
fi

if [ ! -f "$JAR" ]; then
    echo "== fetching S3Proxy $VERSION from Maven Central (first run only)" >&2
    mvn -q -f infra/s3proxy/pom.xml "-Dmlstream.cache=$CACHE_DIR" dependency:copy-dependencies >&2
fi
mkdir -p "$STATE_DIR/run" "$STATE_DIR/logs" "$STATE_DIR/s3proxy/data"
if ! running; then
    cat > "$STATE_DIR/run/s3proxy.properties" <<PROPS
s3proxy.endpoint=$URL
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=$ACCESS_KEY
s3proxy.credential=$SECRET_KEY
jclouds.provider=filesystem
jclouds.filesystem.basedir=$STATE_DIR/s3proxy/data
PROPS
    nohup java -Xmx256m -jar "$JAR" --properties "$STATE_DIR/run/s3proxy.properties" >"$LOG" 2>&1 &
    echo $! > "$PIDFILE"
fi
for _ in $(seq 1 120); do
    # The port accepting connections means the server is up (bash's /dev/tcp: no curl needed).
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then echo "$URL"; exit 0; fi
    running || { echo "S3Proxy exited; see $LOG" >&2; tail -20 "$LOG" >&2; exit 1; }
    sleep 0.5
done
echo "S3Proxy did not answer on $URL within 60 s; see $LOG" >&2
exit 1
