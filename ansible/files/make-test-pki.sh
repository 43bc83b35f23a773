#!/bin/bash
# Makes a TEST certificate set in ansible/pki/ (never for production: there
# the ministry's CA issues them, at the same file names; see
# docs/operations.md, "Certificates").
#
#   files/make-test-pki.sh [HOST=ADDRESS ...] [--public NAME ...] [--integrator NAME ...]
#
# Defaults match inventory/hosts.yml and group_vars/all/main.yml.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${PKI_DIR:-$here/pki}
hosts=() public=() integrator=()
mode=hosts
for arg in "$@"; do
  case "$arg" in
    --public) mode=public ;;
    --integrator) mode=integrator ;;
    *) case $mode in
         hosts) hosts+=("$arg") ;;
         public) public+=("$arg") ;;
         integrator) integrator+=("$arg") ;;
       esac ;;
  esac
done
[ ${#hosts[@]} -gt 0 ] || hosts=(web1=10.20.0.11 app1=10.20.0.12 db1=10.20.0.13)
[ ${#public[@]} -gt 0 ] || public=(fhir.example.org login.example.org monitor.example.org)
[ ${#integrator[@]} -gt 0 ] || integrator=(integrations.example.org)
mkdir -p "$out"
chmod 700 "$out"
cd "$out"
days=825

ca() { # name subject
  [ -f "$1.crt" ] && return
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=$2" -keyout "$1.key" -out "$1.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
leaf() { # name ca subject-cn san usage
  [ -f "$1.crt" ] && return
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$3" \
    -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\n%s\n' \
    "$5" "${4:+subjectAltName=$4}" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial \
    -days $days -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  # PKCS#8 key (Baraza, nginx, PostgreSQL and Keycloak all read it).
  openssl pkcs8 -topk8 -nocrypt -in "$1.key" -out "$1.key.p8" && mv "$1.key.p8" "$1.key"
  rm -f "$1.csr" "$1.ext"
  chmod 600 "$1.key"
}

ca internal-ca "Baraza TEST internal CA"
ca integrators-ca "Baraza TEST integrators CA"
for pair in "${hosts[@]}"; do
  name=${pair%%=*} addr=${pair#*=}
  leaf "$name" internal-ca "$name" "DNS:$name,DNS:baraza-app,DNS:localhost,IP:$addr,IP:127.0.0.1" serverAuth,clientAuth
done
san=$(printf 'DNS:%s,' "${public[@]}")
leaf public internal-ca "${public[0]}" "${san%,}" serverAuth
san=$(printf 'DNS:%s,' "${integrator[@]}")
leaf integrations internal-ca "${integrator[0]}" "${san%,}" serverAuth
# Client certificates: the CN is the integrator's client id at Keycloak.
leaf probe integrators-ca baraza-probe "" clientAuth
leaf integrator-demo integrators-ca integrator-demo "" clientAuth
echo "test PKI in $out"
