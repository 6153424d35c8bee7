#!/bin/sh
# gen_cert.sh DIR - make throwaway TLS test certificates in DIR.
#
#   ca.pem, ca.key          a test CA (self-signed)
#   server.pem, server.key  a server certificate for "localhost"
#                           (subjectAltName DNS:localhost, IP:127.0.0.1,
#                           IP:::1) signed by that CA; server.pem holds
#                           the leaf followed by the CA certificate
#
# EC P-256 keys (fast to make), valid for 2 days. Nothing here is secret
# and nothing is committed: the tests make them at run time under build/.
# Idempotent: when DIR already holds a set that verifies and is valid for
# at least another hour, nothing is done. Quiet unless something fails;
# exits non-zero on failure.
set -eu

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
openssl=${OPENSSL:-openssl}

mkdir -p "$dir"
cd "$dir"

# Up to date? (-checkend: still valid 3600 s from now.)
if [ -s ca.pem ] && [ -s ca.key ] && [ -s server.pem ] && [ -s server.key ] &&
    "$openssl" x509 -in server.pem -noout -checkend 3600 >/dev/null 2>&1 &&
    "$openssl" verify -CAfile ca.pem server.pem >/dev/null 2>&1; then
    exit 0
fi

# Work in a scratch directory and move the results in at the end, so an
# interrupted run never leaves a half-made set that looks complete.
tmp=$(mktemp -d "./.gen_cert.XXXXXX")
log=$tmp/log
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

run() {
    if ! "$@" >>"$log" 2>&1; then
        echo "$0: failed: $*" >&2
        cat "$log" >&2
        exit 1
    fi
}

umask 077 # the keys are throwaway, but keep the habit

cat >"$tmp/ca.ext" <<'EOF'
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF

cat >"$tmp/server.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

run "$openssl" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$tmp/ca.key"
run "$openssl" req -new -key "$tmp/ca.key" -subj "/CN=libws test CA" \
    -out "$tmp/ca.csr"
run "$openssl" x509 -req -in "$tmp/ca.csr" -signkey "$tmp/ca.key" \
    -days 2 -sha256 -extfile "$tmp/ca.ext" -out "$tmp/ca.pem"

run "$openssl" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$tmp/server.key"
run "$openssl" req -new -key "$tmp/server.key" -subj "/CN=localhost" \
    -out "$tmp/server.csr"
serial=0x$("$openssl" rand -hex 16)
run "$openssl" x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" \
    -CAkey "$tmp/ca.key" -set_serial "$serial" -days 2 -sha256 \
    -extfile "$tmp/server.ext" -out "$tmp/leaf.pem"
cat "$tmp/leaf.pem" "$tmp/ca.pem" >"$tmp/server.pem"
run "$openssl" verify -CAfile "$tmp/ca.pem" "$tmp/server.pem"

chmod 644 "$tmp/ca.pem" "$tmp/server.pem"
for f in ca.key ca.pem server.key server.pem; do
    mv -f "$tmp/$f" "./$f"
done
