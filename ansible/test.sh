#!/bin/bash
# Checks the deployment files without VMs; CI can run it as it is.
#   bash ansible/test.sh                 static checks (a few minutes)
#   BARAZA_DEPLOY_INTEGRATION=1 bash ansible/test.sh
#                                        also applies the db, app and web roles
#                                        to this machine (root, Debian 12; see
#                                        tests/local.yml) and runs a backup and
#                                        restore-test.yml against it
# Prints "N passed, N failed" last; exits non-zero when a check failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
work=${BARAZA_DEPLOY_TEST_DIR:-$here/.test}
venv=${BARAZA_DEPLOY_VENV:-/tmp/baraza-ansible-venv}
mkdir -p "$work"
passed=0 failed=0 skipped=0 failures=()

check() { # name command...
  local name=$1; shift
  local log="$work/${name//[^A-Za-z0-9_.-]/_}.log"
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); failures+=("$name"); echo "FAIL $name (log: $log)"; tail -n 30 "$log" | sed 's/^/     /'
  fi
}

# --- Tools: a venv with the pinned versions (Python 3.12+ for ansible-core 2.21)
python=""
for candidate in python3.13 python3.12 "$HOME/.pyenv/versions/3.13.0/bin/python" "$HOME/.pyenv/versions/3.12.1/bin/python" python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
    python=$candidate; break
  fi
done
if [ -z "$python" ]; then
  echo "FAIL no Python 3.12 or newer for ansible-core"; echo "0 passed, 1 failed"; exit 1
fi
if [ ! -x "$venv/bin/ansible-lint" ] || ! cmp -s "$here/requirements.txt" "$venv/.requirements.txt"; then
  "$python" -m venv "$venv" && "$venv/bin/pip" install -q -r "$here/requirements.txt" \
    && cp "$here/requirements.txt" "$venv/.requirements.txt" || { echo "FAIL pip install"; echo "0 passed, 1 failed"; exit 1; }
fi
export PATH="$venv/bin:$PATH"
export ANSIBLE_CONFIG="$here/ansible.cfg"
# promtool (Debian's prometheus package) and nginx with its stream module,
# installed when missing and allowed (root); their services are not
# started (policy-rc.d), so nothing is left listening.
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v nginx >/dev/null || missing+=(nginx)
[ -e /etc/nginx/modules-enabled/50-mod-stream.conf ] || missing+=(libnginx-mod-stream)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  policy_made=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_made=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$work/apt.log" 2>&1 \
    || echo "could not install ${missing[*]} (see $work/apt.log)"
  [ "$policy_made" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

# --- Test PKI (the roles copy certificates from ansible/pki)
PKI_DIR="$work/pki" bash "$here/files/make-test-pki.sh" >/dev/null
cd "$here"

# --- Ansible
check ansible-lint ansible-lint --offline --nocolor
check syntax-site ansible-playbook --syntax-check site.yml
check syntax-restore-test ansible-playbook --syntax-check restore-test.yml
check syntax-local-test ansible-playbook --syntax-check tests/local.yml

# Render the templates that have their own checkers, with the example
# inventory, test PKI and the example vault values.
check render-templates ansible-playbook tests/render.yml \
  -e "render_dir=$work/render" -e "baraza_pki_dir=$work/pki" \
  -e @inventory/group_vars/all/vault.yml.example
check baraza-settings "$venv/bin/python" tests/check_env.py "$repo/server/src/config/variables.rs" roles/app/templates \
  "$work/render/app/common.env" "$work/render/app/migrate.env"
check nginx-config nginx -t -q -c "$work/render/nginx.conf"
check prometheus-config promtool check config --syntax-only "$work/render/prometheus.yml"
# systemd's own parser; the binaries the units start are not installed here.
verify_units() {
  command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing"; return 1; }
  local out
  out=$(cd "$work/render/units" && systemd-analyze verify ./*.service ./*.timer 2>&1 | grep -v 'is not executable' || true)
  [ -z "$out" ] || { echo "$out"; return 1; }
  echo "units OK: $(ls "$work/render/units" | tr '\n' ' ')"
}
if command -v systemd-analyze >/dev/null; then
  check systemd-units verify_units
else
  skipped=$((skipped + 1)); echo "skip systemd-units (no systemd-analyze)"
fi
check postgresql-conf-values grep -E '^(shared_buffers = 8192MB|effective_cache_size = 24576MB|max_connections = 160)$' \
  "$work/render/baraza.conf"

# --- Monitoring files
check promtool-rules promtool check rules roles/monitoring/files/baraza-rules.yml
check promtool-rule-tests promtool test rules tests/rules-test.yml
# The certificate-expiry reporter on the test PKI plus a broken file: one
# expiry per certificate, the broken one flagged, valid exposition format.
cert_expiry() {
  local dir="$work/cert-expiry"
  rm -rf "$dir" && mkdir -p "$dir/in" "$dir/out"
  cp "$work"/pki/*.crt "$dir/in/" && echo "not a certificate" > "$dir/in/broken.crt"
  sh roles/common/files/baraza-cert-expiry "$dir/out" "$dir/in/*.crt" "$dir/none/*.crt" || return 1
  local file="$dir/out/baraza_certificates.prom" certs
  certs=$(ls "$work"/pki/*.crt | wc -l)
  promtool check metrics < "$file" || return 1
  [ "$(grep -c '^baraza_certificate_expiry_timestamp_seconds{' "$file")" = "$certs" ] || { cat "$file"; return 1; }
  grep -q "^baraza_certificate_unreadable{path=\"$dir/in/broken.crt\"} 1$" "$file" || { cat "$file"; return 1; }
  echo "$certs certificates reported"
}
check cert-expiry cert_expiry
check promtool-compose-config promtool check config --syntax-only "$repo/deploy/prometheus/prometheus.yml"
check grafana-dashboard "$venv/bin/python" tests/check_dashboard.py roles/monitoring/files/baraza-dashboard.json "$work/dashboard-rules.yml"
check dashboard-promql promtool check rules "$work/dashboard-rules.yml"
check realm-json "$venv/bin/python" tests/check_realm.py roles/identity/files/baraza-realm.json "$repo/server/src/auth/permissions.rs"

# --- docker compose
if docker compose version >/dev/null 2>&1; then
  check compose-config docker compose -f "$repo/docker-compose.yml" config -q
else
  # No compose plugin here: validate against the Compose Specification's
  # JSON schema (vendored by check-jsonschema), then check references.
  check compose-schema check-jsonschema --builtin-schema vendor.compose-spec "$repo/docker-compose.yml"
  check compose-references "$venv/bin/python" tests/check_compose.py "$repo/docker-compose.yml"
fi
check compose-realm-placeholders "$venv/bin/python" tests/check_compose.py --placeholders "$repo/docker-compose.yml" roles/identity/files/baraza-realm.json

# --- Optional: apply the roles to this machine
if [ "${BARAZA_DEPLOY_INTEGRATION:-0}" = 1 ]; then
  bash "$here/tests/integration.sh" "$work" && passed=$((passed + 1)) || { failed=$((failed + 1)); failures+=(integration); }
fi

[ ${#failures[@]} -eq 0 ] || echo "failed: ${failures[*]}"
if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
