#!/usr/bin/env bash
# Builds Baraza and the benchmark in release mode, writes a synthetic
# SNOMED CT RF2 snapshot (100,000 concepts by default; BARAZA_BENCH_CONCEPTS),
# times `baraza terminology load` of it into a scratch data directory, then
# serves that directory and runs `baraza-bench terminology run`: latencies
# of $validate-code, $expand with a text filter, $subsumes and $lookup.
# Extra arguments go to baraza-bench terminology run (e.g. --requests 200).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
build_release
concepts=${BARAZA_BENCH_CONCEPTS:-100000}
data=$(mktemp -d /tmp/baraza-bench-term.XXXXXX)
rf2=$(mktemp -d /tmp/baraza-bench-rf2.XXXXXX)
chmod 755 "$data" # the embedded cluster's postgres user enters it
trap 'stop_baraza; rm -rf "$data" "$rf2"' EXIT
"$bin/baraza-bench" terminology write-rf2 --dir "$rf2" --concepts "$concepts"
(
    for name in $(compgen -e); do
        case $name in BARAZA_BENCH_*) unset "$name" ;; esac
    done
    start=$(date +%s.%N)
    BARAZA_DATA_DIR="$data" BARAZA_LOG=warn "$bin/baraza" terminology load --format snomed "$rf2"
    end=$(date +%s.%N)
    echo "# baraza terminology load, wall clock including start-up: $(echo "$end - $start" | bc) s"
)
start_baraza "$data"
"$bin/baraza-bench" terminology run --base "$base" --concepts "$concepts" "$@"
