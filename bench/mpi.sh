#!/usr/bin/env bash
# Builds the benchmark in release mode and runs `baraza-bench mpi`: a
# scratch embedded PostgreSQL migrated like Baraza's, N generated patients
# linked through the MPI store (mpi::store::index_patient) in batches, the
# cost per single-patient write, and Patient/$match latency (again after
# growing the index with --fill). Extra arguments go to baraza-bench mpi
# (e.g. --records 100000 --fill 1000000).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CARGO_TARGET_DIR:-target}/release
cargo build --release -p bench
data=$(mktemp -d /tmp/baraza-bench-mpi.XXXXXX)
chmod 755 "$data" # the embedded cluster's postgres user enters it
trap 'rm -rf "$data"' EXIT
"$bin/baraza-bench" mpi --data-dir "$data" "$@"
