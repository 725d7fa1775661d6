#!/usr/bin/env bash
# `make run`: the sandbox and syncd together, in the foreground. Ctrl-C stops both.
# ClickHouse, PostgreSQL and MariaDB are already started by make (scripts/*.sh start).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source .run/dev.env
addr=${SANDBOX_ADDR:-127.0.0.1:18080}

# The sandbox's sources and platforms start empty at each run (it recreates its databases and
# folders), so the store starts empty too: otherwise the ledger would say "already delivered"
# to platforms that forgot it all.
export SYNCD_CLICKHOUSE_DATABASE=syncd_sandbox
scripts/clickhouse.sh client --query "DROP DATABASE IF EXISTS syncd_sandbox"

# Local test logins of scripts/postgres.sh and scripts/mariadb.sh; the sandbox creates these
# databases. In production the DSNs come from the secret store.
export SYNCD_HR_DSN="postgres://syncd:syncd-test@127.0.0.1:15432/sandbox_hr?sslmode=disable"
export SYNCD_LIAONING_DSN="syncd:syncd-test@tcp(127.0.0.1:13306)/sandbox_liaoning?parseTime=true"

bin/syncd-sandbox -listen "$addr" -data .run/sandbox -trickle 20s &
sandbox=$!
trap 'kill $sandbox 2>/dev/null; wait $sandbox 2>/dev/null' EXIT
for _ in $(seq 1 100); do
	curl -fsS "http://$addr/healthz" >/dev/null 2>&1 && break
	kill -0 $sandbox 2>/dev/null || { echo "sandbox failed to start" >&2; exit 1; }
	sleep 0.1
done
echo "sandbox on http://$addr — what each platform holds: curl -s http://$addr/platforms"
bin/syncd run --config config/syncd.yaml
