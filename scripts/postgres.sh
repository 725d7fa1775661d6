#!/usr/bin/env bash
# Starts, stops and checks a private PostgreSQL server for syncd's tests (the SQL source connector
# and the sandbox's 人社 HR system).
#
# It runs the Debian PostgreSQL 15 server binaries (/usr/lib/postgresql/15/bin) on 127.0.0.1 with a
# non-default port, its socket and all data under .run/postgres (git-ignored), through pg_ctl and
# never systemd or pg_ctlcluster, so it never touches a system-wide cluster. PostgreSQL refuses to
# run as root: the server runs as the package's `postgres` user, which owns .run/postgres. When
# the binaries are missing they are installed with apt-get if we are root.
#
# The server is tuned for throwaway test data (fsync off): never point it at data you keep.
#
#   scripts/postgres.sh start    start (idempotent) and wait until it answers
#   scripts/postgres.sh stop     stop it
#   scripts/postgres.sh status   exit 0 when it answers
#   scripts/postgres.sh client   open psql as the test user ("$@" passed on)
#
# Test login: superuser syncd, password syncd-test (a local test credential), so tests use
#   postgres://syncd:syncd-test@127.0.0.1:15432/postgres?sslmode=disable
# (internal/testdb; override with SYNCD_TEST_POSTGRES). Port: SYNCD_PG_PORT (default 15432);
# server version: SYNCD_PG_VERSION (default 15).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.run/postgres"
port=${SYNCD_PG_PORT:-15432}
version=${SYNCD_PG_VERSION:-15}
bin="/usr/lib/postgresql/$version/bin"
data="$dir/data"
user=syncd
password=syncd-test

need_package() {
	[ -x "$bin/postgres" ] && [ -x "$bin/pg_ctl" ] && [ -x "$bin/initdb" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "PostgreSQL $version server binaries are not in $bin. As root run:" >&2
		echo "  apt-get install -y postgresql" >&2
		exit 1
	fi
	echo "installing postgresql with apt-get ..." >&2
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -qq --no-install-recommends postgresql >/dev/null; then
		apt-get update -qq >/dev/null
		apt-get install -y -qq --no-install-recommends postgresql >/dev/null
	fi
	if [ ! -x "$bin/postgres" ]; then
		echo "postgresql installed, but not version $version: set SYNCD_PG_VERSION to one of: $(ls /usr/lib/postgresql)" >&2
		exit 1
	fi
}

# as_pg runs a command as the postgres user (we are root), or as ourselves otherwise.
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

answers() {
	"$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -d postgres >/dev/null 2>&1
}

init_datadir() {
	mkdir -p "$dir"
	[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
	if [ ! -f "$data/PG_VERSION" ]; then
		# Local (socket) connections trust the OS user; TCP needs a password.
		as_pg "$bin/initdb" -D "$data" -U postgres -E UTF8 --locale=C \
			--auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 || {
			echo "initdb failed; see $dir/initdb.log:" >&2
			tail -n 30 "$dir/initdb.log" >&2
			exit 1
		}
	fi
	# Rewritten on every start so a changed port applies; included last, it wins.
	as_pg tee "$data/syncd.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
shared_buffers = 64MB
fsync = off
synchronous_commit = off
full_page_writes = off
timezone = 'Asia/Shanghai'
log_destination = 'stderr'
logging_collector = off
log_min_messages = warning
CONF
	grep -q "^include_if_exists = 'syncd.conf'" "$data/postgresql.conf" ||
		echo "include_if_exists = 'syncd.conf'" | as_pg tee -a "$data/postgresql.conf" >/dev/null
}

create_user() {
	as_pg "$bin/psql" -q -X -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres >/dev/null <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$user') THEN
    CREATE ROLE $user LOGIN SUPERUSER PASSWORD '$password';
  ELSE
    ALTER ROLE $user LOGIN SUPERUSER PASSWORD '$password';
  END IF;
END
\$\$;
SQL
}

start() {
	need_package
	if answers; then
		echo "postgres already answering on 127.0.0.1:$port"
		return 0
	fi
	init_datadir
	# A stale postmaster.pid from a killed server makes pg_ctl refuse; it is stale if its pid is gone.
	if [ -f "$data/postmaster.pid" ] && ! kill -0 "$(head -n1 "$data/postmaster.pid")" 2>/dev/null; then
		rm -f "$data/postmaster.pid"
	fi
	# pg_ctl daemonizes the server (setsid) and -w waits until it accepts connections.
	if ! as_pg "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start >/dev/null; then
		echo "postgres did not start; see $dir/server.log:" >&2
		tail -n 30 "$dir/server.log" >&2 || true
		exit 1
	fi
	for _ in $(seq 1 60); do
		answers && break
		sleep 0.5
	done
	create_user
	echo "postgres started on 127.0.0.1:$port (data in $data, user $user)"
}

stop() {
	if [ -f "$data/postmaster.pid" ] && kill -0 "$(head -n1 "$data/postmaster.pid")" 2>/dev/null; then
		as_pg "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
		echo "postgres stopped"
	else
		echo "postgres not running"
	fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status)
	if answers; then
		echo "postgres answering on 127.0.0.1:$port"
	else
		echo "postgres not answering on 127.0.0.1:$port" >&2
		exit 1
	fi
	;;
client)
	shift
	PGPASSWORD=$password exec "$bin/psql" -h 127.0.0.1 -p "$port" -U "$user" -d postgres "$@"
	;;
*)
	echo "usage: $0 start|stop|status|client" >&2
	exit 2
	;;
esac
