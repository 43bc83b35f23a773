#!/bin/bash
# Applies the db, app and web roles to this machine (Debian 12, root, no
# systemd needed: baraza_service_manager=none), twice (the second run must
# change nothing), then checks Baraza through nginx with TLS, the mTLS
# passthrough, a backup, and restore-test.yml comparing the restored data
# with the live data. Leaves nothing running: the test cluster is dropped.
#   bash tests/integration.sh WORKDIR
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
repo=$(cd "$here/.." && pwd)
work=${1:-$here/.test}
mkdir -p "$work"
log=$work/integration
mkdir -p "$log"
binary=${BARAZA_BINARY:-$repo/target/release/baraza}
fail() { echo "integration: FAIL: $*"; cleanup; exit 1; }
say() { echo "integration: $*"; }

cleanup() {
  for name in api1 api2 mtls1 mtls2; do
    [ -x /usr/local/sbin/baraza-run ] && /usr/local/sbin/baraza-run "$name" stop >/dev/null 2>&1
  done
  [ -f /run/nginx.pid ] && nginx -s quit 2>/dev/null
  pg_dropcluster --stop 15 bztest 2>/dev/null
  rm -rf /var/lib/pgbackrest-bztest /var/spool/pgbackrest
}

[ "$(id -u)" = 0 ] || { echo "integration: needs root"; exit 1; }
exec 9>/tmp/baraza-deploy-integration.lock
flock -n 9 || { echo "integration: another run is in progress"; exit 1; }
cleanup    # start from a machine without the test cluster and processes
[ -x "$binary" ] || { echo "integration: no baraza binary at $binary (cargo build --release -p baraza)"; exit 1; }
cd "$here"

PKI_DIR="$work/pki-local" bash files/make-test-pki.sh local=127.0.0.1 >/dev/null
inv=$work/local-inventory
rm -rf "$inv" && mkdir -p "$inv/group_vars/all"
# The site's group_vars with the example (test) vault values; this
# machine's differences are host variables, which outrank them.
cp inventory/group_vars/all/main.yml "$inv/group_vars/all/main.yml"
cp inventory/group_vars/all/vault.yml.example "$inv/group_vars/all/vault.yml"
cat > "$inv/hosts.yml" <<INV
all:
  hosts:
    local:
      ansible_connection: local
      ansible_python_interpreter: /usr/bin/python3
      # root here, and no sudo: su to postgres needs no password
      ansible_become_method: su
      private_address: 127.0.0.1
      baraza_service_manager: none
      baraza_pki_dir: $work/pki-local
      baraza_binary_src: $binary
      baraza_oidc_issuer: ""
      baraza_rate_limit: "off"
      # BARAZA_METRICS_TOKEN is newer than some release binaries; unset,
      # /metrics answers loopback callers only.
      vault_baraza_metrics_token: "${BARAZA_METRICS_TOKEN_FOR_TEST:-}"
      baraza_instances:
        - {name: api1, port: 18443, mtls: false}
        - {name: api2, port: 18444, mtls: false}
        - {name: mtls1, port: 19443, mtls: true}
        - {name: mtls2, port: 19444, mtls: true}
      baraza_db_port: 5433
      db_pg_cluster: bztest
      db_pg_shared_buffers_mb: 128
      db_pg_max_connections: 100
      pgbackrest_repo_path: /var/lib/pgbackrest-bztest
      db_pgbackrest_textfile_dir: $work/textfile
  children:
    db: {hosts: {local: {}}}
    app: {hosts: {local: {}}}
    web: {hosts: {local: {}}}
    identity: {hosts: {}}
    monitoring: {hosts: {}}
INV
# The group the common role creates (not applied here: it would change
# this machine's trust store).
getent group metrics-writers >/dev/null || groupadd --system metrics-writers
install -d -m 2775 -g metrics-writers "$work/textfile"
chmod o+x "$work" "$(dirname "$work")"
args=(-i "$inv/hosts.yml")

say "first run of tests/local.yml"
ansible-playbook "${args[@]}" tests/local.yml > "$log/first-run.log" 2>&1 9>&- || { tail -40 "$log/first-run.log"; fail "first run"; }
tail -3 "$log/first-run.log"
say "second run (must change nothing)"
ansible-playbook "${args[@]}" tests/local.yml > "$log/second-run.log" 2>&1 9>&- || { tail -40 "$log/second-run.log"; fail "second run"; }
grep -E "^local +:" "$log/second-run.log"
grep -qE "^local +: ok=[0-9]+ +changed=0 " "$log/second-run.log" || {
  grep -B2 -A12 "^changed:" "$log/second-run.log" | head -60; fail "the second run changed something"; }

ca=$work/pki-local/internal-ca.crt
curl_public() { curl -sS --fail-with-body --cacert "$ca" --resolve fhir.example.org:443:127.0.0.1 "$@"; }
say "GET /ready through nginx (TLS, SNI fhir.example.org)"
curl_public https://fhir.example.org/ready > "$log/ready.json" || fail "/ready through nginx"
cat "$log/ready.json"; echo
curl -sS -o /dev/null -D "$log/headers.txt" --cacert "$ca" --resolve fhir.example.org:443:127.0.0.1 https://fhir.example.org/fhir/metadata
grep -qi '^strict-transport-security:' "$log/headers.txt" || fail "no HSTS header"
say "create and read a Patient through nginx"
curl_public -X POST https://fhir.example.org/fhir/Patient -H 'Content-Type: application/fhir+json' \
  -d '{"resourceType":"Patient","identifier":[{"system":"urn:oid:2.16.404.1.1","value":"it-1"}],"name":[{"family":"Otieno"}]}' \
  > "$log/created.json" || fail "create"
curl_public 'https://fhir.example.org/fhir/Patient?identifier=urn:oid:2.16.404.1.1|it-1' > "$log/search.json" || fail "search"
grep -q '"Otieno"' "$log/search.json" || fail "the Patient was not found"
grep -q 'identifier=' /var/log/nginx/access.log && fail "nginx logged a query string"
say "mTLS passthrough (SNI integrations.example.org)"
curl -sS --fail --cacert "$ca" --resolve integrations.example.org:443:127.0.0.1 \
  --cert "$work/pki-local/integrator-demo.crt" --key "$work/pki-local/integrator-demo.key" \
  https://integrations.example.org/ready > "$log/mtls-ready.json" || fail "mTLS /ready with a client certificate"
if curl -sS --cacert "$ca" --resolve integrations.example.org:443:127.0.0.1 https://integrations.example.org/ready >/dev/null 2>&1; then
  fail "the mTLS path answered without a client certificate"
fi

say "rolling restart under load (no request may fail)"
# Two clients create and search Patients through nginx while a run with a
# changed setting restarts the four instances one at a time.
load_client() { # NAME: one create and one search per round until stopped
  local i=0 id code
  while [ ! -e "$work/load.stop" ]; do
    i=$((i + 1)); id="roll-$1-$i"
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$ca" --resolve fhir.example.org:443:127.0.0.1 \
      -X POST https://fhir.example.org/fhir/Patient -H 'Content-Type: application/fhir+json' \
      -d "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:oid:2.16.404.1.1\",\"value\":\"$id\"}]}")
    echo "$(date +%s.%N) POST $code" >> "$log/load-$1.txt"
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$ca" --resolve fhir.example.org:443:127.0.0.1 \
      "https://fhir.example.org/fhir/Patient?identifier=urn:oid:2.16.404.1.1|$id")
    echo "$(date +%s.%N) GET $code" >> "$log/load-$1.txt"
  done
}
rm -f "$work/load.stop" "$log"/load-*.txt
pids_before=$(cat /run/baraza/*.pid | sort | tr '\n' ' ')
load_client a & load_a=$!
load_client b & load_b=$!
sleep 3
ansible-playbook "${args[@]}" -e baraza_log=debug tests/local.yml > "$log/rolling-restart.log" 2>&1 9>&- \
  || { touch "$work/load.stop"; wait; tail -40 "$log/rolling-restart.log"; fail "rolling restart run"; }
sleep 2
touch "$work/load.stop"; wait "$load_a" "$load_b"
pids_after=$(cat /run/baraza/*.pid | sort | tr '\n' ' ')
total=$(cat "$log"/load-*.txt | wc -l)
failed=$(cat "$log"/load-*.txt | awk '$3 !~ /^2/' | wc -l)
say "rolling restart: $total requests, $failed failed"
[ "$total" -ge 40 ] || fail "too few requests during the rolling restart ($total)"
[ "$failed" = 0 ] || { cat "$log"/load-*.txt | awk '$3 !~ /^2/' | head; fail "$failed requests failed during the rolling restart"; }
[ "$(comm -12 <(tr ' ' '\n' <<<"$pids_before" | sort) <(tr ' ' '\n' <<<"$pids_after" | sort) | grep -c .)" = 0 ] \
  || fail "not every instance was restarted (pids before: $pids_before, after: $pids_after)"
# Back to the inventory's settings (restarts them again).
ansible-playbook "${args[@]}" tests/local.yml > "$log/rolling-restart-back.log" 2>&1 9>&- || fail "settings back"

say "backup"
su postgres -s /bin/bash -c /usr/local/sbin/baraza-backup > "$log/backup.log" 2>&1 || { tail -20 "$log/backup.log"; fail "backup"; }
grep '^baraza_backup_last_success_timestamp_seconds' "$work/textfile/baraza_backup.prom" || fail "no backup metric"
say "restore-test.yml (compares digests of every resource version and audit event with the live database)"
ansible-playbook "${args[@]}" -e restore_test_compare_live=true restore-test.yml > "$log/restore-test.log" 2>&1 9>&- \
  || { tail -40 "$log/restore-test.log"; fail "restore test"; }
grep -A3 '"msg"' "$log/restore-test.log" | head -12
cleanup
say "passed"
