#!/usr/bin/env bash
# Builds Baraza and the benchmark in release mode and runs `baraza-bench
# audit`: two `baraza serve`s side by side (BARAZA_AUDIT=on and =off) on
# scratch data directories seeded alike, read-by-id and a patient's
# Observations search at 1 and 16 clients against each in turn; prints
# every measurement and the on/off ratios. Extra arguments go to
# baraza-bench audit (e.g. --rounds 10 --seconds 5). BARAZA_BENCH_PORT sets
# the first port (default 18182; the second server uses the next one).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
build_release
data=$(mktemp -d /tmp/baraza-bench-audit.XXXXXX)
chmod 755 "$data" # the embedded clusters' postgres user enters it
trap 'rm -rf "$data"' EXIT
"$bin/baraza-bench" audit --baraza "$bin/baraza" --data-dir "$data" \
    --port "${BARAZA_BENCH_PORT:-18182}" "$@"
