#!/usr/bin/env bash
# Builds Baraza in release mode and measures ingest batches (docs/ingest.md)
# on a scratch embedded cluster: N NDJSON Patients (default 10000; first
# argument) uploaded in one request, sent complete and written by the
# worker, one record per transaction; then the same records again (all
# `unchanged`). Prints the upload time, the processing time and records/s
# for each. Needs curl. BARAZA_BENCH_PORT sets the port (default 18181).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
cargo build --release -p baraza
n=${1:-10000}
data=$(mktemp -d /tmp/baraza-bench-ingest.XXXXXX)
chmod 755 "$data" # the embedded cluster's postgres user enters it
records=$data/records.ndjson
trap 'stop_baraza; rm -rf "$data"' EXIT
start_baraza "$data/pg"
root="http://127.0.0.1:$port"
until curl -sf "$root/ready" >/dev/null; do sleep 0.2; done
for i in $(seq 1 "$n"); do
    printf '{"resourceType":"Patient","id":"bench-%d","active":true,"gender":"female","birthDate":"1990-01-01","name":[{"family":"Family%d","given":["Given"]}]}\n' "$i" "$i"
done >"$records"

now() { date +%s.%N; }
field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"; }

run_batch() {
    local label=$1 id t0 t1 t2 status body
    id=$(curl -sf -X POST "$root/ingest/default/batches" \
        -d "{\"name\":\"bench $label\",\"dataType\":\"ndjson\"}" | field id)
    t0=$(now)
    curl -sf -X POST "$root/ingest/default/batches/$id/records" --data-binary "@$records" >/dev/null
    t1=$(now)
    curl -sf -X PUT "$root/ingest/default/batches/$id/action/sendComplete" >/dev/null
    while :; do
        body=$(curl -sf "$root/ingest/default/batches/$id")
        status=$(printf '%s' "$body" | field status)
        case $status in completed | failed | terminated) break ;; esac
        sleep 0.1
    done
    t2=$(now)
    awk -v label="$label" -v n="$n" -v t0="$t0" -v t1="$t1" -v t2="$t2" 'BEGIN {
        printf "%-10s %7d records: upload %6.2f s, processing %7.2f s, %8.0f records/s\n",
            label, n, t1 - t0, t2 - t1, n / (t2 - t1) }'
    printf '%s\n' "$body" | sed -n 's/.*"counts":\({[^}]*}\).*/           counts \1/p'
}

run_batch new
run_batch unchanged
