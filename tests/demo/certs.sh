#!/usr/bin/env bash
# Demo certificates for `make run` (and the repo's routes.ts): a private CA and one EC P-256
# certificate for xyz.com, *.xyz.com and localhost, made with openssl into .tmp/demo-certs/ once
# (kept between runs, never committed). Trust the CA with curl --cacert .tmp/demo-certs/ca.pem.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=.tmp/demo-certs
[ -s "$dir/xyz.pem" ] && [ -s "$dir/xyz.key" ] && openssl x509 -checkend 86400 -noout -in "$dir/xyz.pem" >/dev/null 2>&1 && exit 0
command -v openssl >/dev/null || { echo "openssl is needed for the demo certificates (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$dir"
cd "$dir"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -subj '/CN=switchyard demo CA' -days 365 -out ca.pem \
  -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out xyz.key.new 2>/dev/null
openssl req -new -key xyz.key.new -subj '/CN=xyz.com' -out xyz.csr 2>/dev/null
printf 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:xyz.com,DNS:*.xyz.com,DNS:localhost,IP:127.0.0.1\n' >xyz.ext
openssl x509 -req -in xyz.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 90 -extfile xyz.ext -out xyz.pem.new 2>/dev/null
# Renamed into place (the proxy polls these files and would pick up a half-written pair).
mv xyz.key.new xyz.key
mv xyz.pem.new xyz.pem
echo "demo certificates in $dir (CA: $dir/ca.pem)" >&2
