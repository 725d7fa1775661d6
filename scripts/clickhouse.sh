#!/usr/bin/env bash
# Starts, stops and checks a private ClickHouse server for syncd's tests and `make run`.
#
# It runs the Debian clickhouse-server (18.16) on 127.0.0.1 with non-default ports and all data
# under .run/clickhouse (git-ignored), so it never touches a system-wide installation.
# When the package is missing it is installed with apt-get if we are root; otherwise the script
# prints what to do.
#
#   scripts/clickhouse.sh start    start (idempotent) and wait until it answers
#   scripts/clickhouse.sh stop     stop it
#   scripts/clickhouse.sh status   exit 0 when it answers
#   scripts/clickhouse.sh client   open clickhouse-client against it ("$@" passed on)
#
# Ports: SYNCD_CH_TCP_PORT (default 19000), SYNCD_CH_HTTP_PORT (default 18123).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.run/clickhouse"
tcp_port=${SYNCD_CH_TCP_PORT:-19000}
http_port=${SYNCD_CH_HTTP_PORT:-18123}
pidfile="$dir/clickhouse.pid"

need_package() {
	command -v clickhouse-server >/dev/null 2>&1 && command -v clickhouse-client >/dev/null 2>&1 && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "clickhouse-server is not installed. As root run:" >&2
		echo "  apt-get update && apt-get install -y clickhouse-server clickhouse-client" >&2
		exit 1
	fi
	echo "installing clickhouse-server with apt-get ..." >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq --no-install-recommends clickhouse-server clickhouse-client >/dev/null
}

write_config() {
	mkdir -p "$dir/data" "$dir/tmp" "$dir/log" "$dir/format_schemas" "$dir/user_files"
	cat >"$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$dir/log/server.log</log>
        <errorlog>$dir/log/server.err.log</errorlog>
        <size>10M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$tcp_port</tcp_port>
    <http_port>$http_port</http_port>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>Asia/Shanghai</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
XML
	cat >"$dir/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval><duration>3600</duration><queries>0</queries><errors>0</errors>
            <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval>
        </default>
    </quotas>
</yandex>
XML
}

answers() {
	clickhouse-client --host 127.0.0.1 --port "$tcp_port" --query 'SELECT 1' >/dev/null 2>&1
}

start() {
	need_package
	if answers; then
		echo "clickhouse already answering on 127.0.0.1:$tcp_port"
		return 0
	fi
	write_config
	# Run as the current user (root in CI): the Debian package's own user owns only /var/lib.
	clickhouse-server --config-file="$dir/config.xml" --pid-file="$pidfile" --daemon
	for _ in $(seq 1 120); do
		if answers; then
			echo "clickhouse started on 127.0.0.1:$tcp_port (data in $dir)"
			return 0
		fi
		sleep 0.5
	done
	echo "clickhouse did not answer within 60s; see $dir/log/server.err.log:" >&2
	tail -n 30 "$dir/log/server.err.log" >&2 || true
	exit 1
}

stop() {
	local pid=""
	[ -f "$pidfile" ] && pid=$(cat "$pidfile")
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid"
		for _ in $(seq 1 60); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		echo "clickhouse stopped"
	else
		echo "clickhouse not running"
	fi
	rm -f "$pidfile"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) answers && echo "clickhouse answering on 127.0.0.1:$tcp_port" ;;
client) shift; exec clickhouse-client --host 127.0.0.1 --port "$tcp_port" "$@" ;;
*) echo "usage: $0 start|stop|status|client" >&2; exit 2 ;;
esac
