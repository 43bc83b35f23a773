# Shared by the benchmark scripts; source it from the repository root.
# Release build, and starting and stopping Baraza with its embedded
# PostgreSQL on a data directory. BARAZA_BENCH_PORT sets the port (default
# 18181); CARGO_TARGET_DIR is honoured.

bin=${CARGO_TARGET_DIR:-target}/release
port=${BARAZA_BENCH_PORT:-18181}
base="http://127.0.0.1:$port/fhir"
baraza_pid=

build_release() {
    cargo build --release -p baraza -p bench
}

# start_baraza DATA_DIR [BINARY]: starts Baraza (the release build, or
# BINARY) in the background (baraza-bench waits until it answers). The master patient index is off unless
# BARAZA_MPI=on is set: with it every Patient written also writes its
# golden record, which doubles the Patients that searches find (the search
# benchmark's checks expect one Patient per identifier) and measures the
# MPI rather than the REST core; bench/mpi-write.sh measures that cost.
start_baraza() {
    (
        # Baraza refuses BARAZA_* variables it does not know; these are
        # the scripts' own.
        for name in $(compgen -e); do
            case $name in BARAZA_BENCH_*) unset "$name" ;; esac
        done
        BARAZA_DATA_DIR="$1" BARAZA_LISTEN="127.0.0.1:$port" BARAZA_LOG=warn \
            BARAZA_MPI="${BARAZA_MPI:-off}" exec "${2:-$bin/baraza}" serve
    ) &
    baraza_pid=$!
}

# stop_baraza: stops Baraza (and with it the embedded PostgreSQL) and waits.
stop_baraza() {
    if [ -n "$baraza_pid" ]; then
        kill -TERM "$baraza_pid" 2>/dev/null || true
        wait "$baraza_pid" 2>/dev/null || true
        baraza_pid=
    fi
}

# bench_data_dir: sets `data` to BARAZA_BENCH_DATA_DIR (kept at the end,
# so a later run skips loading) or to a scratch directory (removed), and
# `keep` to 1 or 0.
bench_data_dir() {
    if [ -n "${BARAZA_BENCH_DATA_DIR:-}" ]; then
        data=$BARAZA_BENCH_DATA_DIR
        keep=1
        mkdir -p "$data"
        data=$(cd "$data" && pwd)
    else
        data=$(mktemp -d /tmp/baraza-bench.XXXXXX)
        keep=0
    fi
}

# cleanup_bench: stops Baraza, then removes or names the data directory.
cleanup_bench() {
    stop_baraza
    if [ "$keep" = 1 ]; then
        echo "# data directory kept: $data"
    else
        rm -rf "$data"
    fi
}

# run_bench SUBCOMMAND ARGS...: builds, starts Baraza on the data
# directory and runs `baraza-bench SUBCOMMAND --base ... ARGS`.
run_bench() {
    local subcommand=$1
    shift
    bench_data_dir
    build_release
    trap cleanup_bench EXIT
    start_baraza "$data"
    "$bin/baraza-bench" "$subcommand" --base "$base" "$@"
}
