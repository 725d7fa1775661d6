#!/usr/bin/env bash
# `make run`: the sandbox and syncd together, in the foreground. Ctrl-C stops both.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source .run/dev.env
addr=${SANDBOX_ADDR:-127.0.0.1:18080}

# The sandbox keeps its source and platform in memory, so each `make run` starts from an empty
# store too: otherwise the ledger would say "already delivered" to a platform that forgot it all.
export SYNCD_CLICKHOUSE_DATABASE=syncd_sandbox
scripts/clickhouse.sh client --query "DROP DATABASE IF EXISTS syncd_sandbox"

bin/syncd-sandbox -listen "$addr" -seed testdata/sandbox/discipline.jsonl -trickle 20s &
sandbox=$!
trap 'kill $sandbox 2>/dev/null; wait $sandbox 2>/dev/null' EXIT
for _ in $(seq 1 50); do
	curl -fsS "http://$addr/liaoning/admin/stats" >/dev/null 2>&1 && break
	sleep 0.1
done
echo "sandbox on http://$addr — platform holdings: curl http://$addr/liaoning/admin/stats"
bin/syncd run --config config/syncd.yaml
