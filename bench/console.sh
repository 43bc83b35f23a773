#!/usr/bin/env bash
# The operator console's first view (issue 11: <= 1 s on loopback). Builds
# Baraza in release mode, starts it with its embedded PostgreSQL and
# authentication off (loopback), loads a few resources so the overview has
# data, and times the overview in headless Chromium (Debian's chromium,
# playwright-core from tests/fixtures/console) in a fresh browser context
# per round. Prints min, median, p95 and max.
#   bash bench/console.sh [ROUNDS]      (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
rounds=${1:-20}
command -v chromium >/dev/null || { echo "console.sh: needs chromium (apt-get install chromium)" >&2; exit 1; }
[ -d tests/fixtures/console/node_modules/playwright-core ] || npm ci --prefix tests/fixtures/console --silent
build_release
data=$(mktemp -d /tmp/baraza-bench.XXXXXX)
trap 'stop_baraza; rm -rf "$data"' EXIT
start_baraza "$data"
for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
    sleep 0.5
done
for i in $(seq 1 20); do
    curl -fsS -o /dev/null -X PUT "$base/Patient/console-$i" -H 'Content-Type: application/fhir+json' \
        -d "{\"resourceType\":\"Patient\",\"id\":\"console-$i\",\"gender\":\"female\"}"
done
CONSOLE_URL="http://127.0.0.1:$port/console/" ROUNDS=$rounds node tests/fixtures/console/first-view.mjs
