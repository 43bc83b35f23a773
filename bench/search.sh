#!/usr/bin/env bash
# Builds Baraza and the benchmark in release mode, starts Baraza with its
# embedded PostgreSQL and runs `baraza-bench search` (load a population,
# time nine searches single-client and as a concurrent mix). Then it turns
# on auto_explain in the cluster, restarts Baraza so that its connections
# load it, runs each search once (--explain-only), turns auto_explain off
# again and prints where the plans are. Extra arguments go to baraza-bench
# search (e.g. --patients 1000 --seconds 10).
#
# Environment:
#   BARAZA_BENCH_DATA_DIR  data directory to use and keep (default: a
#                          scratch directory, removed at the end); when it
#                          already holds a population, baraza-bench skips
#                          loading (pass the same --patients and --seed)
#   BARAZA_BENCH_PLANS     where the plans go (default
#                          /tmp/baraza-search-plans-<date>.txt)
#   BARAZA_BENCH_PORT      port of Baraza (default 18181)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

psql=$(ls -d /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -n 1)
psql=${psql:-$(command -v psql || true)}
if [ -z "$psql" ]; then
    echo "search.sh: psql not found (apt-get install postgresql-client)" >&2
    exit 1
fi
plans=${BARAZA_BENCH_PLANS:-/tmp/baraza-search-plans-$(date +%Y%m%d-%H%M%S).txt}
bench_data_dir
explain_on=0

# sql ARGS...: psql on the embedded cluster, over its unix socket (the
# postmaster.pid file names the socket directory; root may use it although
# the cluster runs as `postgres`).
sql() {
    "$psql" -X -q -v ON_ERROR_STOP=1 -h "$(sed -n 5p "$data/pgdata/postmaster.pid")" \
        -p 5432 -U baraza -d baraza "$@"
}

explain_settings() {
    if [ "$1" = on ]; then
        sql -c "LOAD 'auto_explain'" \
            -c "ALTER SYSTEM SET session_preload_libraries = 'auto_explain'" \
            -c "ALTER SYSTEM SET auto_explain.log_min_duration = 0" \
            -c "ALTER SYSTEM SET auto_explain.log_analyze = on" \
            -c "ALTER SYSTEM SET auto_explain.log_buffers = on" \
            -c "ALTER SYSTEM SET auto_explain.log_format = 'text'" \
            -c "SELECT pg_reload_conf()" >/dev/null
        explain_on=1
    else
        sql -c "ALTER SYSTEM RESET session_preload_libraries" \
            -c "ALTER SYSTEM RESET auto_explain.log_min_duration" \
            -c "ALTER SYSTEM RESET auto_explain.log_analyze" \
            -c "ALTER SYSTEM RESET auto_explain.log_buffers" \
            -c "ALTER SYSTEM RESET auto_explain.log_format" \
            -c "SELECT pg_reload_conf()" >/dev/null
        explain_on=0
    fi
}

cleanup() {
    if [ "$explain_on" = 1 ]; then
        explain_settings off || true
    fi
    cleanup_bench
}

build_release
trap cleanup EXIT
start_baraza "$data"
"$bin/baraza-bench" search --base "$base" "$@"

echo "# EXPLAIN: restarting Baraza with auto_explain on"
explain_settings on
stop_baraza
start_baraza "$data"
"$bin/baraza-bench" search --base "$base" "$@" --skip-load --explain-only \
    --explain-log "$data/postgres.log" --explain-out "$plans"
explain_settings off
echo "# plans: $plans"
