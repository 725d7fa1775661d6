#!/usr/bin/env bash
# Writes .run/dev.env with random development secrets (git-ignored): the PII hash and
# encryption keys, the admin token and the sandbox platforms' credentials. Variables already
# in the file are kept; missing ones are added, so an older .run/dev.env keeps working.
# Production keys come from the operator's secret store, never from this file.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
f="$root/.run/dev.env"
mkdir -p "$root/.run"
umask 077
touch "$f"
key() { head -c32 /dev/urandom | base64; }
tok() { head -c18 /dev/urandom | base64 | tr '+/' '-_'; }
add() { # add NAME VALUE, unless NAME is already set in the file
	grep -q "^export $1=" "$f" || { echo "export $1=$2" >>"$f"; added=1; }
}
added=0
add SYNCD_PII_HASH_KEY "$(key)"
add SYNCD_PII_ENC_KEY "$(key)"
add SYNCD_ADMIN_TOKEN "$(tok)"
add SYNCD_NATIONAL_APP_SECRET "$(tok)"
[ "$added" = 1 ] && echo "wrote development secrets to $f"
exit 0
