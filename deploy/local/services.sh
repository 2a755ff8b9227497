#!/usr/bin/env bash
# Local development services for hexpulse: a real ClickHouse server (Debian's build) and a
# single-node Apache Kafka in KRaft mode (jars from Maven Central, deploy/local/kafka/pom.xml).
# Idempotent: `up` starts only what is not already answering; `down` stops what `up` started (by
# pid) and keeps the data folders, so topics, offsets and groups survive a restart.
# Usage: services.sh up|down|status|kafka-up|kafka-down
#   kafka-up / kafka-down handle the broker alone; tests start private brokers this way with their
#   own HEXPULSE_LOCAL_STATE, HEXPULSE_KAFKA_BOOTSTRAP and HEXPULSE_KAFKA_CONTROLLER_PORT.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STATE=${HEXPULSE_LOCAL_STATE:-$ROOT/.local}
CH_PORT=${HEXPULSE_CLICKHOUSE_PORT:-19000}
CH_HTTP_PORT=${HEXPULSE_CLICKHOUSE_HTTP_PORT:-18123}
CH_INTERSERVER_PORT=${HEXPULSE_CLICKHOUSE_INTERSERVER_PORT:-19009}
KAFKA_BOOTSTRAP=${HEXPULSE_KAFKA_BOOTSTRAP:-127.0.0.1:19092}
KAFKA_FIRST=${KAFKA_BOOTSTRAP%%,*}
KAFKA_HOST=${KAFKA_FIRST%%:*}
KAFKA_PORT=${KAFKA_FIRST##*:}
KAFKA_CONTROLLER_PORT=${HEXPULSE_KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}
KAFKA_VERSION=4.4.0  # keep equal to kafka.version in deploy/local/kafka/pom.xml
KAFKA_DIR=$STATE/kafka
KAFKA_LIBS=${HEXPULSE_KAFKA_LIBS:-$KAFKA_DIR/libs}
KAFKA_HEAP=${HEXPULSE_KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}
KAFKA_EXTRA_CONFIG=${HEXPULSE_KAFKA_EXTRA_CONFIG:-}
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

java_major() { java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p'; }

# Kafka 4.x needs Java 17+; Debian's maven brings a JRE with it. As root, install what is missing.
install_java_maven() {
  local need=()
  command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
  command -v mvn >/dev/null 2>&1 || need+=(maven)
  if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "Kafka needs ${need[*]}: run 'apt-get install -y ${need[*]}' as root."
    say "installing Debian's ${need[*]} (one-time)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
      || die "apt-get could not install ${need[*]}."
  fi
  local major; major=$(java_major)
  [ "${major:-0}" -ge 17 ] 2>/dev/null \
    || die "Apache Kafka $KAFKA_VERSION needs Java 17 or newer, but 'java' here is ${major:-unknown}; put a newer one first on PATH."
}

# The broker's class path, resolved from Maven Central by deploy/local/kafka/pom.xml once and
# cached in $KAFKA_LIBS (Maven also keeps its own copy in ~/.m2); a changed pom re-resolves. The
# jars land in a fresh folder that then replaces the old one, so no stale version stays behind.
resolve_kafka_libs() {
  local pom=$ROOT/deploy/local/kafka/pom.xml want
  want=$(sha256sum "$pom" | cut -d' ' -f1)
  if [ -f "$KAFKA_LIBS/.pom.sha256" ] && [ "$(cat "$KAFKA_LIBS/.pom.sha256")" = "$want" ]; then return 0; fi
  install_java_maven
  say "resolving Apache Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS (one-time, ~30 s)"
  local tmp=$KAFKA_LIBS.partial
  rm -rf "$tmp"; mkdir -p "$tmp"
  mvn -B -q -f "$pom" dependency:copy-dependencies -DoutputDirectory="$tmp" >"$tmp.log" 2>&1 \
    || die "Maven could not resolve the Kafka jars from Maven Central; see $tmp.log"
  echo "$want" >"$tmp/.pom.sha256"
  rm -rf "$KAFKA_LIBS"; mv "$tmp" "$KAFKA_LIBS"; rm -f "$tmp.log"
}

kafka_java() { java -cp "$KAFKA_LIBS/*" "$@"; }  # what the distribution's kafka-run-class.sh does

kafka_config() {
  mkdir -p "$KAFKA_DIR/data" "$KAFKA_DIR/logs"
  # One KRaft node, broker and controller. As in production (docs/DEPLOY.md) where it matters to
  # hexpulse: no topic auto-creation (`hexpulse topics` creates topics with their configs).
  # Replication 1 because there is one node; no initial rebalance delay because tests start many
  # short-lived groups.
  cat >"$KAFKA_DIR/server.properties" <<EOF
# Written by deploy/local/services.sh at every start; change that script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$KAFKA_DIR/data
auto.create.topics.enable=false
num.partitions=3
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=48
num.network.threads=2
num.io.threads=4
EOF
  # Extra broker settings, e.g. a SASL listener for a test's private broker; later keys win.
  if [ -n "$KAFKA_EXTRA_CONFIG" ]; then cat "$KAFKA_EXTRA_CONFIG" >>"$KAFKA_DIR/server.properties"; fi
}

# Format the log folder once: a cluster id and a standalone (single-voter, dynamic) controller
# quorum. Later starts find meta.properties and keep topics, offsets and groups.
kafka_format() {
  [ -f "$KAFKA_DIR/data/meta.properties" ] && return 0
  local id
  id=$(kafka_java kafka.tools.StorageTool random-uuid 2>"$KAFKA_DIR/logs/format.log") \
    || die "the Kafka storage tool did not run; see $KAFKA_DIR/logs/format.log"
  kafka_java kafka.tools.StorageTool format --standalone --cluster-id "$id" \
      --config "$KAFKA_DIR/server.properties" >>"$KAFKA_DIR/logs/format.log" 2>&1 \
    || die "formatting Kafka's log folder failed; see $KAFKA_DIR/logs/format.log"
  say "formatted Kafka storage in $KAFKA_DIR/data (cluster id $id)"
}

kafka_ready() { # our broker says it started (so the port is not some other process's) and it answers
  port_open "$KAFKA_HOST" "$KAFKA_PORT" && tail -c +$((KAFKA_LOG_MARK + 1)) "$KAFKA_LOG" 2>/dev/null | grep -q 'Kafka Server started'
}

start_kafka() {
  if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then say "Kafka broker already answering on $KAFKA_BOOTSTRAP"; return 0; fi
  port_open 127.0.0.1 "$KAFKA_CONTROLLER_PORT" \
    && die "port 127.0.0.1:$KAFKA_CONTROLLER_PORT (the Kafka controller's) is taken by another process; set HEXPULSE_KAFKA_CONTROLLER_PORT."
  resolve_kafka_libs
  install_java_maven
  kafka_config
  kafka_format
  KAFKA_LOG=$KAFKA_DIR/logs/server.log KAFKA_LOG_MARK=0
  [ -f "$KAFKA_LOG" ] && KAFKA_LOG_MARK=$(stat -c %s "$KAFKA_LOG")
  local t0; t0=$(date +%s%N)
  say "starting Apache Kafka $KAFKA_VERSION (KRaft) on $KAFKA_BOOTSTRAP, controller 127.0.0.1:$KAFKA_CONTROLLER_PORT (log: $KAFKA_LOG)"
  # The distribution's kafka-server-start.sh JVM options, with a smaller heap (HEXPULSE_KAFKA_HEAP_OPTS).
  # shellcheck disable=SC2086
  LOG=$KAFKA_DIR/logs/stdout.log PIDFILE=$STATE/kafka.pid daemonize java $KAFKA_HEAP \
      -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
      -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
      -Dkafka.logs.dir="$KAFKA_DIR/logs" \
      -Dlog4j2.configurationFile="$ROOT/deploy/local/kafka/log4j2.properties" \
      -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DIR/server.properties"
  local deadline=$((SECONDS + WAIT_S))
  until kafka_ready; do
    [ $SECONDS -lt $deadline ] || die "the Kafka broker did not become ready on $KAFKA_BOOTSTRAP within ${WAIT_S}s; see $KAFKA_LOG"
    kill -0 "$(cat "$STATE/kafka.pid")" 2>/dev/null \
      || die "the Kafka broker exited during start-up (port $KAFKA_PORT in use?); see $KAFKA_LOG and $KAFKA_DIR/logs/stdout.log"
    [ "$(stat -c %s "$KAFKA_LOG" 2>/dev/null || echo 0)" -ge "$KAFKA_LOG_MARK" ] || KAFKA_LOG_MARK=0  # rolled over
    sleep 0.3
  done
  say "Kafka broker ready after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
}

stop_pidfile() { # name [seconds to wait for a clean exit before kill -9]
  local name=$1 file=$STATE/$1.pid wait_s=${2:-10}
  [ -f "$file" ] || { say "$name: not started by us"; return 0; }
  local pid; pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((wait_s * 4))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    say "$name stopped (pid $pid)"
  else
    say "$name was not running"
  fi
  rm -f "$file"
}

case "${1:-}" in
  up) mkdir -p "$STATE"; start_clickhouse; provision_api_user; start_kafka ;;
  # A clean broker stop writes recovery checkpoints; a kill -9 costs a log scan at the next start.
  down) stop_pidfile kafka 30; stop_pidfile clickhouse ;;
  kafka-up) mkdir -p "$STATE"; start_kafka ;;
  kafka-down) stop_pidfile kafka 30 ;;
  status)
    port_open 127.0.0.1 "$CH_PORT" && say "ClickHouse up on $CH_PORT" || say "ClickHouse down"
    port_open "$KAFKA_HOST" "$KAFKA_PORT" && say "Kafka up on $KAFKA_BOOTSTRAP" || say "Kafka down" ;;
  *) die "usage: services.sh up|down|status|kafka-up|kafka-down" ;;
esac
