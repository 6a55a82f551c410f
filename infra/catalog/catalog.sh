#!/usr/bin/env bash
# The shared catalog (docs/catalog.md): a Hive metastore in PostgreSQL (infra/postgres.sh's server,
# database and user 'metastore'), a warehouse bucket on S3Proxy (infra/s3proxy/s3proxy.sh) and the
# SQL endpoint over both: Spark's Thrift server (HiveServer2 protocol, from pyspark's own jars) on
# 127.0.0.1, no authentication (NOSASL). Idempotent: fetches and starts only what is missing.
# Prints the settings that put a Spark job on the same catalog (KEY=VALUE lines), then the
# endpoint's JDBC URL on its last line.
#
#   bash infra/catalog/catalog.sh          # fetch if needed, start (also: start)
#   bash infra/catalog/catalog.sh status   # exit 0 when the endpoint answers
#   bash infra/catalog/catalog.sh stop     # stop the Thrift server, S3Proxy and PostgreSQL (the data stays)
set -euo pipefail
cd "$(dirname "$0")/../.."
STATE_DIR="${MLSTREAM_STATE_DIR:-$PWD/.mlstream}"
CACHE_DIR="${MLSTREAM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mlstream}"
export MLSTREAM_STATE_DIR="$STATE_DIR" MLSTREAM_CACHE_DIR="$CACHE_DIR"
PYTHON="${MLSTREAM_PYTHON:-$(if [ -x .venv/bin/python ]; then echo "$PWD/.venv/bin/python"; else command -v python3; fi)}"
THRIFT_PORT="${MLSTREAM_THRIFT_PORT:-10000}"
PGPORT="${MLSTREAM_POSTGRES_PORT:-55432}"
S3PORT="${MLSTREAM_S3PROXY_PORT:-58180}"
BUCKET="mlstream-warehouse"
PIDFILE="$STATE_DIR/run/thrift-server.pid"
LOG="$STATE_DIR/logs/thrift-server.log"
EVENTS="$STATE_DIR/catalog/events"
URL="jdbc:hive2://127.0.0.1:$THRIFT_PORT/default"

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$THRIFT_PORT") 2>/dev/null; }

case "${1:-start}" in
    stop)
        if running; then
            kill "$(cat "$PIDFILE")"
            for _ in $(seq 1 60); do running || break; sleep 0.5; done
        fi
        rm -f "$PIDFILE"
        bash infra/s3proxy/s3proxy.sh stop
        bash infra/postgres.sh stop
        exit 0 ;;
    status)
        if running && answers; then echo "$URL"; exit 0; fi
        echo "the catalog's Thrift server is not running on $URL" >&2; exit 1 ;;
    start) ;;
    *) echo "usage: bash infra/catalog/catalog.sh [start|status|stop]" >&2; exit 2 ;;
esac

# The s3a jars must match the Hadoop inside pyspark; the pom pins them, so say when they part.
PYSPARK_HOME="$("$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
HADOOP="$(sed -n 's:.*<hadoop.version>\(.*\)</hadoop.version>.*:\1:p' infra/catalog/pom.xml)"
if [ ! -f "$PYSPARK_HOME/jars/hadoop-client-api-$HADOOP.jar" ]; then
    echo "infra/catalog/pom.xml pins hadoop-aws $HADOOP, but pyspark ships Hadoop" \
         "$(ls "$PYSPARK_HOME"/jars/hadoop-client-api-*.jar | sed 's:.*api-\(.*\)\.jar:\1:')): set hadoop.version to it" >&2
    exit 1
fi
if [ ! -f "$CACHE_DIR/lib/catalog-$HADOOP/hadoop-aws-$HADOOP.jar" ]; then
    echo "== fetching hadoop-aws $HADOOP, the AWS SDK bundle and the PostgreSQL driver (~660 MB, first run only)" >&2
    mvn -q -f infra/catalog/pom.xml "-Dmlstream.cache=$CACHE_DIR" dependency:copy-dependencies >&2
fi

# The metastore's database: its own user and database on our PostgreSQL.
bash infra/postgres.sh >/dev/null
PSQL="$(ls /usr/lib/postgresql/*/bin/psql | sort -V | tail -1)"
psql_do() { "$PSQL" -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -tAq "$@"; }
if [ "$(psql_do -c "SELECT 1 FROM pg_roles WHERE rolname='metastore'")" != "1" ]; then
    psql_do -c "CREATE ROLE metastore LOGIN"
fi
if [ "$(psql_do -c "SELECT 1 FROM pg_database WHERE datname='metastore'")" != "1" ]; then
    psql_do -c "CREATE DATABASE metastore OWNER metastore"
fi

# The warehouse bucket: S3Proxy's filesystem backend keeps a bucket as a folder of its data dir.
S3_URL="$(bash infra/s3proxy/s3proxy.sh | tail -1)"
mkdir -p "$STATE_DIR/s3proxy/data/$BUCKET"

export MLSTREAM_METASTORE_URL="${MLSTREAM_METASTORE_URL:-postgresql://metastore@127.0.0.1:$PGPORT/metastore}"
export MLSTREAM_WAREHOUSE="${MLSTREAM_WAREHOUSE:-s3a://$BUCKET/}"
export MLSTREAM_S3_ENDPOINT_URL="${MLSTREAM_S3_ENDPOINT_URL:-$S3_URL}"
# S3Proxy's local credentials (infra/s3proxy/s3proxy.sh), unless the caller has its own.
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-mlstream}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-mlstream-local-secret}"

mkdir -p "$STATE_DIR/run" "$STATE_DIR/logs" "$EVENTS"
if ! running; then
    CONF=()
    while IFS= read -r line; do
        case "$line" in
            classpath=*) CONF+=(--driver-class-path "${line#classpath=}") ;;
            *) CONF+=(--conf "$line") ;;
        esac
    done < <("$PYTHON" -m spark_jobs.catalog conf)
    echo "== starting Spark's Thrift server on 127.0.0.1:$THRIFT_PORT (log: $LOG)" >&2
    # The event log is the endpoint's query audit's source (mlstream/security/warehouse_audit.py); a table's
    # relation is not cached between queries, so each query sees the files a Spark job committed since.
    nohup "$PYSPARK_HOME/bin/spark-submit" --master 'local[2]' --driver-memory 768m --name mlstream-sql-endpoint \
        --class org.apache.spark.sql.hive.thriftserver.HiveThriftServer2 "${CONF[@]}" \
        --conf spark.ui.enabled=false --conf spark.sql.shuffle.partitions=4 \
        --conf spark.sql.filesourceTableRelationCacheSize=0 \
        --conf spark.eventLog.enabled=true --conf "spark.eventLog.dir=file://$EVENTS" \
        --conf spark.eventLog.compress=false --conf spark.eventLog.rolling.enabled=false \
        --conf "spark.driver.extraJavaOptions=-Dlog4j2.configurationFile=$PWD/spark_jobs/log4j2.properties" \
        spark-internal \
        --hiveconf hive.server2.thrift.bind.host=127.0.0.1 --hiveconf "hive.server2.thrift.port=$THRIFT_PORT" \
        --hiveconf hive.server2.authentication=NOSASL --hiveconf hive.server2.enable.doAs=false \
        >"$LOG" 2>&1 &
    echo $! > "$PIDFILE"
fi
for _ in $(seq 1 240); do
    if answers; then
        echo "MLSTREAM_METASTORE_URL=$MLSTREAM_METASTORE_URL"
        echo "MLSTREAM_WAREHOUSE=$MLSTREAM_WAREHOUSE"
        echo "MLSTREAM_S3_ENDPOINT_URL=$MLSTREAM_S3_ENDPOINT_URL"
        echo "$URL"
        exit 0
    fi
    running || { echo "the Thrift server exited; see $LOG" >&2; tail -30 "$LOG" >&2; exit 1; }
    sleep 0.5
done
echo "the Thrift server did not answer on $URL within 120 s; see $LOG" >&2
exit 1
