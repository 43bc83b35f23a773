#!/usr/bin/env bash
# Builds Baraza and the benchmark in release mode, starts Baraza with its
# embedded PostgreSQL in a scratch directory (validation and bindings on,
# as always; the MPI on, as by default, though Observations do not use it)
# and times Bulk Data $import of generated Observations
# (`baraza-bench import`): the kick-off that stores the upload as ingest
# records, then the processing by the ingest worker's fast path.
# Extra arguments go to baraza-bench import (e.g. --observations 200000
# --rounds 2).
#
# Environment:
#   BARAZA_BENCH_DATA_DIR  data directory to use and keep (default: a
#                          scratch directory, removed at the end)
#   BARAZA_BENCH_PORT      port of Baraza (default 18181)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

run_bench import "$@"
