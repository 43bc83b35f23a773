#!/usr/bin/env bash
# Builds Baraza and the benchmark in release mode and runs `baraza-bench
# mpi-write`: two `baraza serve`s side by side (BARAZA_MPI=on and =off) on
# scratch data directories seeded with the same generated patients, then
# Patient creates at 1 and 8 clients against each in turn; prints every
# phase and the on/off latency ratios (issue 6: at most 2). Extra arguments
# go to baraza-bench mpi-write (e.g. --seed-patients 20000 --rounds 7).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
build_release
data=$(mktemp -d /tmp/baraza-bench-mpi-write.XXXXXX)
chmod 755 "$data" # the embedded clusters' postgres user enters it
trap 'rm -rf "$data"' EXIT
"$bin/baraza-bench" mpi-write --baraza "$bin/baraza" --data-dir "$data" \
    --port "${BARAZA_BENCH_PORT:-18184}" "$@"
