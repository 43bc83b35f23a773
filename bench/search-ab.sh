#!/usr/bin/env bash
# Compares two builds of Baraza on the search mix, interleaved: for each of
# ROUNDS rounds, each binary in turn is started on the same kept data
# directory (a population loaded before, e.g. by bench/search.sh with
# BARAZA_BENCH_DATA_DIR), runs the mix untimed and then timed
# (`baraza-bench search --skip-load --requests 1`: 30 s each by default;
# further `baraza-bench search` options such as `--only Q4` or
# `--seconds 15` follow the binaries), and is stopped. Each line names the
# round, the binary and the figures; on this shared 2-core host a single
# run can move by a fifth, so compare rounds, not runs.
#
#   mkdir -p /tmp/before && cp target/release/baraza /tmp/before/
#   (change, rebuild)
#   BARAZA_BENCH_DATA_DIR=/tmp/b10k bash bench/search-ab.sh 3 \
#       /tmp/before/baraza target/release/baraza [--only Q4]
#
# Keep each binary named `baraza` (in its own directory): the benchmark
# finds Baraza's process by that name for its CPU figure. The benchmark
# itself is the current release build of `bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

if [ $# -lt 3 ] || [ -z "${BARAZA_BENCH_DATA_DIR:-}" ]; then
    echo "usage: BARAZA_BENCH_DATA_DIR=DIR bash bench/search-ab.sh ROUNDS BINARY_A BINARY_B [baraza-bench search options]" >&2
    exit 2
fi
rounds=$1
binaries=("$2" "$3")
shift 3
bench_data_dir
cargo build --release -p bench
trap stop_baraza EXIT
for round in $(seq 1 "$rounds"); do
    for binary in "${binaries[@]}"; do
        start_baraza "$data" "$binary"
        figures=$("$bin/baraza-bench" search --base "$base" --skip-load --requests 1 "$@" \
            | grep -E '^(Q|mix c=)' || true)
        stop_baraza
        while IFS= read -r line; do
            echo "$round $binary $line"
        done <<< "$figures"
    done
done
