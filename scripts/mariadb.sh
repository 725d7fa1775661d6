#!/usr/bin/env bash
# Starts, stops and checks a private MariaDB server for syncd's tests (the SQL source connector and
# the sandbox's SQL systems).
#
# It runs the Debian mariadb-server (10.11) on 127.0.0.1 with a non-default port, its socket and
# all data under .run/mariadb (git-ignored), without systemd and without /etc/mysql's config, so
# it never touches a system-wide installation. When the package is missing it is installed with
# apt-get if we are root; otherwise the script prints what to do. The server runs as the
# package's `mysql` user, which owns .run/mariadb.
#
#   scripts/mariadb.sh start    start (idempotent) and wait until it answers
#   scripts/mariadb.sh stop     stop it
#   scripts/mariadb.sh status   exit 0 when it answers
#   scripts/mariadb.sh client   open the mariadb client as the test user ("$@" passed on)
#
# Test login: user syncd, password syncd-test (a local test credential, all privileges), so
# tests use  syncd:syncd-test@tcp(127.0.0.1:13306)/  (internal/testdb; override with
# SYNCD_TEST_MYSQL). Port: SYNCD_MARIADB_PORT (default 13306).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.run/mariadb"
port=${SYNCD_MARIADB_PORT:-13306}
sock="$dir/mysqld.sock"
pidfile="$dir/mysqld.pid"
user=syncd
password=syncd-test

need_package() {
	command -v mariadbd >/dev/null 2>&1 && command -v mariadb-install-db >/dev/null 2>&1 && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "mariadb-server is not installed. As root run:" >&2
		echo "  apt-get install -y mariadb-server" >&2
		exit 1
	fi
	echo "installing mariadb-server with apt-get ..." >&2
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -qq --no-install-recommends mariadb-server mariadb-client >/dev/null; then
		apt-get update -qq >/dev/null
		apt-get install -y -qq --no-install-recommends mariadb-server mariadb-client >/dev/null
	fi
}

answers() {
	mariadb-admin --no-defaults --protocol=socket --socket="$sock" -uroot ping >/dev/null 2>&1
}

# server_opts are passed on the command line with --no-defaults: /etc/mysql is never read.
server_opts() {
	echo --no-defaults \
		--user=mysql \
		--datadir="$dir/data" \
		--socket="$sock" \
		--pid-file="$pidfile" \
		--log-error="$dir/log/error.log" \
		--port="$port" \
		--bind-address=127.0.0.1 \
		--skip-name-resolve \
		--character-set-server=utf8mb4 \
		--collation-server=utf8mb4_unicode_ci \
		--innodb-buffer-pool-size=64M \
		--innodb-log-file-size=32M \
		--innodb-flush-log-at-trx-commit=2 \
		--skip-log-bin \
		--max-connections=200
}

init_datadir() {
	mkdir -p "$dir/log"
	if [ ! -d "$dir/data/mysql" ]; then
		mkdir -p "$dir/data"
		chown -R mysql:mysql "$dir"
		mariadb-install-db --no-defaults --user=mysql --datadir="$dir/data" \
			--auth-root-authentication-method=socket --skip-test-db >"$dir/log/install.log" 2>&1 || {
			echo "mariadb-install-db failed; see $dir/log/install.log:" >&2
			tail -n 30 "$dir/log/install.log" >&2
			exit 1
		}
	fi
	chown -R mysql:mysql "$dir"
}

create_user() {
	# root@localhost authenticates by unix socket (we are root), so this needs no password.
	mariadb --no-defaults --protocol=socket --socket="$sock" -uroot <<SQL
CREATE USER IF NOT EXISTS '$user'@'127.0.0.1' IDENTIFIED BY '$password';
CREATE USER IF NOT EXISTS '$user'@'localhost' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON *.* TO '$user'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$user'@'localhost' WITH GRANT OPTION;
SQL
}

start() {
	need_package
	if answers; then
		echo "mariadb already answering on 127.0.0.1:$port"
		return 0
	fi
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		# Another server (another checkout's, say) holds the port: use it if the test login works.
		if mariadb-admin --no-defaults --protocol=tcp -h127.0.0.1 -P"$port" -u"$user" -p"$password" ping >/dev/null 2>&1; then
			echo "mariadb answering on 127.0.0.1:$port (a server started elsewhere; the test login works)"
			return 0
		fi
		echo "port 127.0.0.1:$port is taken by a server that refuses the test login; stop it or set SYNCD_MARIADB_PORT" >&2
		exit 1
	fi
	init_datadir
	# setsid: the server must outlive this shell and not get its terminal's signals.
	# shellcheck disable=SC2046
	setsid mariadbd $(server_opts) </dev/null >>"$dir/log/stdout.log" 2>&1 &
	for _ in $(seq 1 120); do
		if answers; then
			create_user
			echo "mariadb started on 127.0.0.1:$port (data in $dir, user $user)"
			return 0
		fi
		sleep 0.5
	done
	echo "mariadb did not answer within 60s; see $dir/log/error.log:" >&2
	tail -n 30 "$dir/log/error.log" >&2 || true
	exit 1
}

stop() {
	local pid=""
	[ -f "$pidfile" ] && pid=$(cat "$pidfile")
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid"
		for _ in $(seq 1 120); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "mariadb (pid $pid) did not stop within 60s" >&2
			exit 1
		fi
		echo "mariadb stopped"
	else
		echo "mariadb not running"
	fi
	rm -f "$pidfile"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status)
	if answers; then
		echo "mariadb answering on 127.0.0.1:$port"
	else
		echo "mariadb not answering on 127.0.0.1:$port" >&2
		exit 1
	fi
	;;
client)
	shift
	exec mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$port" -u"$user" -p"$password" "$@"
	;;
*)
	echo "usage: $0 start|stop|status|client" >&2
	exit 2
	;;
esac
