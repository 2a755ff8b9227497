#!/usr/bin/env bash
# `make demo`: the whole system on this machine. Services, migrations and topics are already up
# (Makefile prerequisites). This starts the pipeline (2 consumers, the releaser), the API with
# the dashboard, backfills the last minutes of a simulated city at full speed, then keeps the city
# running in real time so the map updates every window. Ctrl-C (or DEMO_MINUTES) stops the
# processes this script started; `make down` stops the services.
set -euo pipefail
cd "$(dirname "$0")/../.."
HP=.venv/bin/hexpulse
RUN=${HEXPULSE_STATE_DIR:-.local}/demo
# Empty DEMO_DEVICES = the city at real density (35 % of Tianhe's ~2.2 M people: ~770,000
# devices, ~9,900 pings/s at rush hour; docs/SIMULATOR.md); a number scales it down on a small machine.
DEVICES=${DEMO_DEVICES:-}
BACKFILL=${DEMO_BACKFILL:-5m}
MINUTES=${DEMO_MINUTES:-15}
size=()
[ -n "$DEVICES" ] && size=(--devices "$DEVICES")
label=${DEVICES:-"the real-density"}
mkdir -p "$RUN"
pids=()

start() { # name, command...
  local name=$1; shift
  "$@" >"$RUN/$name.log" 2>&1 &
  pids+=($!)
  echo "demo: started $name (pid $!, log $RUN/$name.log)"
}

stop_all() {
  trap - EXIT INT TERM
  echo "demo: stopping pipeline, releaser, alerts and API"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  done
  echo "demo: stopped (services keep running; 'make down' stops them)"
}
trap stop_all EXIT INT TERM

$HP keyring init
# The simulator acts as the devices' gateway and stamps every record (CreateTime); windows close
# on record time, so the backfill needs those stamps kept (docs/SIMULATOR.md). `hexpulse topics`
# sets the config on the existing topics.
export HEXPULSE_TOPIC_TIMESTAMP_TYPE=CreateTime
$HP topics
start releaser "$HP" release
# The alert evaluator follows the release feed (its metrics port is HEXPULSE_ALERTS_METRICS_PORT).
start alerts "$HP" alerts
start api "$HP" api

port=${HEXPULSE_API_PORT:-8000}
host=${HEXPULSE_API_HOST:-127.0.0.1}
for _ in $(seq 1 60); do
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && break
  sleep 0.5
done
(exec 3<>"/dev/tcp/$host/$port") 2>/dev/null || { echo "demo: ERROR: the API did not start; see $RUN/api.log" >&2; exit 1; }

key=$($HP keys create --name "demo-dashboard-$(date +%s)" --scope density:read --scope traffic:read --quiet)
echo
echo "demo: dashboard  http://$host:$port/#key=$key"
echo "demo: API docs   http://$host:$port/docs   (Authorization: Bearer $key)"
echo

echo "demo: backfilling the last $BACKFILL of the simulated city ($label devices, full speed)"
# The consumers start only once the backfill is being produced: at real density generating it
# takes a minute or more, and a consumer left idle that long closes windows on its idle timeout
# (wall clock), which would make every backfilled ping late.
: >"$RUN/backfill.log"
"$HP" simulate "${size[@]}" --duration "$BACKFILL" --speed max --zones-out "$RUN/zones.geojson" \
  2> >(tee "$RUN/backfill.log" >&2) &
backfill=$!
until grep -q "; producing" "$RUN/backfill.log" 2>/dev/null; do
  kill -0 "$backfill" 2>/dev/null || break
  sleep 1
done
# Two consumers in one group share the partitions; each needs its own metrics port on one host.
start consumer-1 env HEXPULSE_METRICS_PORT="${DEMO_METRICS_PORT:-9108}" "$HP" consume
start consumer-2 env HEXPULSE_METRICS_PORT="$(( ${DEMO_METRICS_PORT:-9108} + 1 ))" "$HP" consume
wait "$backfill" || { echo "demo: ERROR: the backfill failed; see $RUN/backfill.log" >&2; exit 1; }
# The city's crowd zones (stadium, scenic areas), districts and road corridors, registered as an admin would: each
# is measured from the next window on (the backfilled windows keep what they had).
$HP zones load "$RUN/zones.geojson"
echo "demo: the city now runs in real time for ${MINUTES} min (Ctrl-C to stop)"
# `simulate` prints the devices it runs, every 5 s the pings/s it sends and how far behind real
# time it is (one warning sentence when it falls behind), and at the end the rate it sustained.
# It starts 60 s from now: setting up the city at real density takes ~10 s of CPU (~50 s on a
# busy machine), and a feed that starts late sends its first minute late.
$HP simulate "${size[@]}" --duration "${MINUTES}m" --start now+60s --speed realtime --seed 2
