#!/bin/sh
# Makes a self-signed certificate for the trial's nginx (localhost), once.
# Run by the `certs` service of docker-compose.yml (alpine), or by hand:
#   TLS_DIR=deploy/tls sh deploy/nginx/make-cert.sh
set -eu
dir=${TLS_DIR:-/tls}
mkdir -p "$dir"
if [ -s "$dir/cert.pem" ] && [ -s "$dir/key.pem" ]; then
  echo "certificate exists"; exit 0
fi
command -v openssl >/dev/null || apk add --no-cache openssl >/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$dir/key.pem" -out "$dir/cert.pem"
chmod 644 "$dir/cert.pem" "$dir/key.pem"
echo "self-signed certificate for localhost written to $dir"
