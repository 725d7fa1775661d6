#!/usr/bin/env bash
# Writes .run/dev.env with random development secrets (once; git-ignored):
# the PII hash and encryption keys, the sandbox platform token and the admin token.
# Production keys come from the operator's secret store, never from this file.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
f="$root/.run/dev.env"
[ -f "$f" ] && exit 0
mkdir -p "$root/.run"
umask 077
key() { head -c32 /dev/urandom | base64; }
tok() { head -c18 /dev/urandom | base64 | tr '+/' '-_'; }
platform_token=$(tok)
cat >"$f" <<ENV
export SYNCD_PII_HASH_KEY=$(key)
export SYNCD_PII_ENC_KEY=$(key)
export SYNCD_ADMIN_TOKEN=$(tok)
export SYNCD_SANDBOX_PLATFORM_TOKEN=$platform_token
export SYNCD_LIAONING_TOKEN=$platform_token
ENV
echo "wrote development secrets to $f"
