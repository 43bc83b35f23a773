#!/usr/bin/env bash
# Builds Baraza and the benchmark in release mode, starts Baraza with its
# embedded PostgreSQL in a scratch directory, runs `baraza-bench rest`, and
# stops everything. Extra arguments go to baraza-bench (e.g. --seconds 5).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
build_release
data=$(mktemp -d /tmp/baraza-bench.XXXXXX)
trap 'stop_baraza; rm -rf "$data"' EXIT
start_baraza "$data"
"$bin/baraza-bench" rest --base "$base" "$@"
