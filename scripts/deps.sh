#!/usr/bin/env bash
# Start/stop/status of the local real dependencies: RabbitMQ, FerretDB (SQLite), Jaeger.
# Idempotent: `start` finds running ones and leaves them. Data lives under .data/ (ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DATA=$ROOT/.data
BIN=$ROOT/.deps/bin
mkdir -p "$DATA"/{rabbitmq,ferretdb,ferretdb-state,logs}
say() { printf '\033[1m[deps]\033[0m %s\n' "$*"; }

export RABBITMQ_CONFIG_FILE=$ROOT/deploy/local/rabbitmq   # .conf is appended by rabbitmq
export RABBITMQ_MNESIA_BASE=$DATA/rabbitmq/mnesia
export RABBITMQ_LOG_BASE=$DATA/rabbitmq/log
export RABBITMQ_PID_FILE=$DATA/rabbitmq/rabbit.pid
export RABBITMQ_NODENAME=carbon@localhost
export RABBITMQ_ENABLED_PLUGINS_FILE=$DATA/rabbitmq/enabled_plugins
export ERL_EPMD_ADDRESS=127.0.0.1
# No scheduler busy-waiting: an idle broker otherwise spins ~25% of a core here (measured).
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none"
export HOME=${HOME:-/root}
# The Debian wrappers in /usr/sbin switch to the rabbitmq user, who cannot write our .data/;
# the scripts in /usr/lib/rabbitmq/bin run as the invoking user with its own Erlang cookie.

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {  # port, name, seconds
  local deadline=$((SECONDS + $3))
  until port_open "$1"; do
    [ $SECONDS -lt $deadline ] || { say "$2 did not open port $1 in $3 s (logs: $DATA/logs)"; return 1; }
    sleep 0.2
  done
}

rabbit_start() {
  if port_open 5672 && port_open 15672; then say "RabbitMQ already running on 127.0.0.1:5672"; return; fi
  say "starting RabbitMQ (management on 127.0.0.1:15672)"
  echo '[rabbitmq_management].' > "$RABBITMQ_ENABLED_PLUGINS_FILE"
  /usr/lib/rabbitmq/bin/rabbitmq-server -detached
  local deadline=$((SECONDS + 60))
  until [ -s "$RABBITMQ_PID_FILE" ]; do [ $SECONDS -lt $deadline ] || { say "RabbitMQ wrote no pid file"; exit 1; }; sleep 0.2; done
  /usr/lib/rabbitmq/bin/rabbitmqctl -q -n "$RABBITMQ_NODENAME" wait --timeout 60 "$RABBITMQ_PID_FILE" >/dev/null
  wait_port 15672 "RabbitMQ management" 60
}
rabbit_stop() {
  if port_open 5672; then say "stopping RabbitMQ"; /usr/lib/rabbitmq/bin/rabbitmqctl -q -n "$RABBITMQ_NODENAME" stop "$RABBITMQ_PID_FILE" >/dev/null 2>&1 || true; fi
}

ferret_start() {
  if port_open 27017; then say "FerretDB already running on 127.0.0.1:27017"; return; fi
  say "starting FerretDB v1.24.2 (SQLite backend, telemetry disabled) on 127.0.0.1:27017"
  # WAL with synchronous=NORMAL: a commit survives a killed FerretDB (what chaos does), not
  # a power cut; dev/CI only (production is MongoDB, w: majority). ~40% more inserts/s here.
  nohup "$BIN/ferretdb" --handler=sqlite --sqlite-url="file:$DATA/ferretdb/?_pragma=synchronous(normal)" \
    --listen-addr=127.0.0.1:27017 --debug-addr=127.0.0.1:8089 --telemetry=disable \
    --state-dir="$DATA/ferretdb-state" --log-level=warn \
    >"$DATA/logs/ferretdb.log" 2>&1 &
  echo $! > "$DATA/ferretdb.pid"
  wait_port 27017 FerretDB 30
}
ferret_stop() { stop_pid ferretdb; }

jaeger_start() {
  if port_open 16686; then say "Jaeger already running (UI http://127.0.0.1:16686)"; return; fi
  say "starting Jaeger v1.76.0 (OTLP 127.0.0.1:4317/4318, UI http://127.0.0.1:16686)"
  nohup "$BIN/jaeger" --config "$ROOT/deploy/local/jaeger.yaml" >"$DATA/logs/jaeger.log" 2>&1 &
  echo $! > "$DATA/jaeger.pid"
  wait_port 16686 Jaeger 30
  wait_port 4318 "Jaeger OTLP" 30
}
jaeger_stop() { stop_pid jaeger; }

stop_pid() {
  local f=$DATA/$1.pid
  if [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then
    say "stopping $1"; kill "$(cat "$f")"
    local deadline=$((SECONDS + 15))
    while kill -0 "$(cat "$f")" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
  fi
  rm -f "$f"
}

status() {
  for p in "RabbitMQ:5672" "RabbitMQ-management:15672" "FerretDB:27017" "Jaeger-OTLP:4318" "Jaeger-UI:16686"; do
    if port_open "${p##*:}"; then s=up; else s=down; fi
    printf '  %-22s 127.0.0.1:%-6s %s\n' "${p%%:*}" "${p##*:}" "$s"
  done
}

case "${1:-start}" in
  start) rabbit_start; ferret_start; jaeger_start ;;
  stop) jaeger_stop; ferret_stop; rabbit_stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status"; exit 2 ;;
esac
