#!/usr/bin/env bash
# Builds Baraza and the benchmark in release mode, starts Baraza with its
# embedded PostgreSQL in a scratch directory, runs `baraza-bench rest`, and
# stops everything. Extra arguments go to baraza-bench (e.g. --seconds 5).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p baraza -p bench
data=$(mktemp -d /tmp/baraza-bench.XXXXXX)
port=${BARAZA_BENCH_PORT:-18181}
BARAZA_DATA_DIR="$data" BARAZA_LISTEN="127.0.0.1:$port" BARAZA_LOG=warn ./target/release/baraza serve &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
./target/release/baraza-bench rest --base "http://127.0.0.1:$port/fhir" "$@"
