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

run_bench view "$@"
