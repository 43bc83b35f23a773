#!/usr/bin/env bash
# Builds Baraza and the benchmark in release mode and runs `baraza-bench
# audit`: read-by-id and a patient's Observations search at 1 and 16
# clients, against `baraza serve` with BARAZA_AUDIT=on and =off in turns,
# on one scratch data directory; prints each run and the on/off ratios.
# Extra arguments go to baraza-bench audit (e.g. --rounds 5 --seconds 10).
# BARAZA_BENCH_PORT sets the port (default 18182).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
build_release
data=$(mktemp -d /tmp/baraza-bench-audit.XXXXXX)
trap 'rm -rf "$data"' EXIT
"$bin/baraza-bench" audit --baraza "$bin/baraza" --data-dir "$data" \
    --port "${BARAZA_BENCH_PORT:-18182}" "$@"
