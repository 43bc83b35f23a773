#!/usr/bin/env bash
# Builds Baraza and the benchmark in release mode, starts Baraza with its
# embedded PostgreSQL and times materialising a 10-column Observation view
# of the search population twice (`baraza-bench view`).
# Extra arguments go to baraza-bench view (e.g. --patients 10000 for
# about 990,000 resources).
#
# Environment:
#   BARAZA_BENCH_DATA_DIR  data directory to use and keep (default: a
#                          scratch directory, removed at the end); when it
#                          already holds the population, loading is skipped
#   BARAZA_BENCH_PORT      port of Baraza (default 18181)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

if [ -n "${BARAZA_BENCH_DATA_DIR:-}" ]; then
    data=$BARAZA_BENCH_DATA_DIR
    keep=1
    mkdir -p "$data"
    data=$(cd "$data" && pwd)
else
    data=$(mktemp -d /tmp/baraza-bench.XXXXXX)
    keep=0
fi

cleanup() {
    stop_baraza
    if [ "$keep" = 1 ]; then
        echo "# data directory kept: $data"
    else
        rm -rf "$data"
    fi
}

build_release
trap cleanup EXIT
start_baraza "$data"
"$bin/baraza-bench" view --base "$base" "$@"
