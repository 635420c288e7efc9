#!/usr/bin/env bash
# Start/stop/status of the local real dependencies: RabbitMQ, FerretDB (SQLite), Jaeger.
#
#   scripts/deps.sh start|stop|status [rabbitmq|ferretdb|jaeger ...]   (default: all three)
#   scripts/deps.sh stop-owned OWNER     stop only what `start` with CARBON_DEPS_OWNER=OWNER started
#
# Idempotent: `start` finds running ones and leaves them. Data lives under .data/ (ignored).
# Who started what: `start` writes .data/<dep>.owner (owner token, the starting command and its
# pid, the dependency's pid, when) for each dependency it actually starts, nothing for one that
# was already running. `make run` stops on Ctrl-C only the dependencies it started itself
# (stop-owned); `stop` stops them whoever started them. `stop` never waits without a deadline:
# a dependency is found by its pid file, else by the process listening on its port (another
# checkout, a lost pid file), else it says so and goes on; SIGTERM, then SIGKILL after 30 s.
#
# A throwaway copy (tests) on other ports and another data directory: CARBON_DEPS_DATA,
# CARBON_RABBIT_PORT, CARBON_RABBIT_UI_PORT, CARBON_RABBIT_NODE, CARBON_FERRET_PORT,
# CARBON_FERRET_DEBUG_PORT; CARBON_DEPS="ferretdb" limits every command to the named ones ("": none).
# CARBON_FERRET_GOGC (default off), CARBON_FERRET_GOMEMLIMIT (default 1GiB): FerretDB's Go collector;
# CARBON_FERRET_SQLITE_PRAGMAS: the `_pragma=...` query of its SQLite URL ("" for SQLite's defaults);
# CARBON_FERRET_BATCH_SIZE (default 1000): documents per SQLite transaction of one insert.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DATA=${CARBON_DEPS_DATA:-$ROOT/.data}
BIN=$ROOT/.deps/bin
RABBIT_PORT=${CARBON_RABBIT_PORT:-5672}
RABBIT_UI_PORT=${CARBON_RABBIT_UI_PORT:-15672}
FERRET_PORT=${CARBON_FERRET_PORT:-27017}
FERRET_DEBUG_PORT=${CARBON_FERRET_DEBUG_PORT:-8089}
STOP_GRACE=30   # seconds between SIGTERM and SIGKILL
mkdir -p "$DATA"/{rabbitmq,ferretdb,ferretdb-state,logs}
say() { printf '\033[1m[deps]\033[0m %s\n' "$*"; }

# The config is deploy/local/rabbitmq.conf with this run's ports (RabbitMQ appends .conf).
export RABBITMQ_CONFIG_FILE=$DATA/rabbitmq/rabbitmq
export RABBITMQ_MNESIA_BASE=$DATA/rabbitmq/mnesia
export RABBITMQ_LOG_BASE=$DATA/rabbitmq/log
export RABBITMQ_PID_FILE=$DATA/rabbitmq/rabbit.pid
export RABBITMQ_NODENAME=${CARBON_RABBIT_NODE:-carbon}@localhost
export RABBITMQ_DIST_PORT=$((RABBIT_PORT + 20000))
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
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
comm_of() { cat "/proc/$1/comm" 2>/dev/null || true; }
cmdline_of() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | sed 's/ $//' || true; }
pid_on_port() {  # the pid listening on 127.0.0.1:port, empty when none (or not visible)
  ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p;T;q'
}
pid_in() { [ -s "$1" ] && tr -dc '0-9' <"$1" || true; }

# --- who started what -----------------------------------------------------------------------
started_by() {  # the command that asked for the start: CARBON_DEPS_STARTED_BY, else our parent
  if [ -n "${CARBON_DEPS_STARTED_BY:-}" ]; then echo "$CARBON_DEPS_STARTED_BY"; return; fi
  local parent=$PPID grand
  grand=$(ps -o ppid= -p "$parent" 2>/dev/null | tr -d ' ')
  if [ "$(comm_of "$parent")" != make ] && [ -n "$grand" ] && [ "$(comm_of "$grand")" = make ]; then
    echo "$(cmdline_of "$grand") (pid $grand) > $(cmdline_of "$parent") (pid $parent)"
  else
    echo "$(cmdline_of "$parent") (pid $parent)"
  fi
}
write_owner() {  # dep, pid
  {
    echo "owner=${CARBON_DEPS_OWNER:-pid-$PPID}"
    echo "started_by=$(started_by)"
    echo "pid=$2"
    echo "checkout=$ROOT"
    echo "at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  } >"$DATA/$1.owner"
}
owner_field() { [ -f "$DATA/$1.owner" ] && sed -n "s/^$2=//p;T;q" "$DATA/$1.owner" || true; }
who() {  # dep, running pid: who started it, as far as we know
  local recorded
  recorded=$(owner_field "$1" pid)
  if [ -z "$recorded" ]; then echo "not recorded (started by an older deps.sh, another checkout or by hand)"
  elif [ "$recorded" != "$2" ]; then echo "not recorded (owner file names pid $recorded, not this process)"
  else echo "$(owner_field "$1" started_by) at $(owner_field "$1" at)"; fi
}

# --- finding and stopping a dependency ------------------------------------------------------
find_pid() {  # dep, pid file, port, expected process name -> prints "pid how"; empty if not running
  local pid how
  pid=$(pid_in "$2")
  if alive "$pid" && [ "$(comm_of "$pid")" = "$4" ]; then echo "$pid pid-file"; return; fi
  pid=$(pid_on_port "$3")
  if [ -n "$pid" ]; then
    how="port-$3"
    if [ "$(comm_of "$pid")" = "$4" ]; then echo "$pid $how"; return; fi
    say "port $3 is held by $(comm_of "$pid") (pid $pid), not $4: left alone" >&2
  elif port_open "$3"; then
    say "port $3 is open but its process is not visible to $(id -un): left alone" >&2
  fi
}
stop_dep() {  # dep, label, pid file, port, expected process name
  local found pid how deadline
  found=$(find_pid "$1" "$3" "$4" "$5")
  if [ -z "$found" ]; then
    say "$2 not running (no live pid in $3, nothing of ours on 127.0.0.1:$4)"
    rm -f "$3" "$DATA/$1.owner"; return 0
  fi
  pid=${found% *}; how=${found#* }
  say "stopping $2 (pid $pid, found by ${how/-/ }; started by: $(who "$1" "$pid"))"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_GRACE))
  while alive "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
  if alive "$pid"; then
    say "$2 (pid $pid) still running ${STOP_GRACE} s after SIGTERM: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while alive "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
  fi
  alive "$pid" && { say "$2 (pid $pid) did not exit"; return 1; }
  rm -f "$3" "$DATA/$1.owner"
}

# --- the three dependencies -----------------------------------------------------------------
start_rabbitmq() {
  if port_open "$RABBIT_PORT" && port_open "$RABBIT_UI_PORT"; then
    say "RabbitMQ already running on 127.0.0.1:$RABBIT_PORT"; return; fi
  say "starting RabbitMQ on 127.0.0.1:$RABBIT_PORT (management on 127.0.0.1:$RABBIT_UI_PORT)"
  sed -e "s/^listeners.tcp.default = .*/listeners.tcp.default = 127.0.0.1:$RABBIT_PORT/" \
      -e "s/^management.tcp.port = .*/management.tcp.port = $RABBIT_UI_PORT/" \
      "$ROOT/deploy/local/rabbitmq.conf" >"$RABBITMQ_CONFIG_FILE.conf"
  # consistent-hash exchange: account's shard queues (carbon_common.topology, ADR 0004)
  echo '[rabbitmq_management,rabbitmq_consistent_hash_exchange].' > "$RABBITMQ_ENABLED_PLUGINS_FILE"
  rm -f "$RABBITMQ_PID_FILE"
  /usr/lib/rabbitmq/bin/rabbitmq-server -detached
  local deadline=$((SECONDS + 60))
  until [ -s "$RABBITMQ_PID_FILE" ]; do [ $SECONDS -lt $deadline ] || { say "RabbitMQ wrote no pid file"; exit 1; }; sleep 0.2; done
  write_owner rabbitmq "$(pid_in "$RABBITMQ_PID_FILE")"
  timeout 90 /usr/lib/rabbitmq/bin/rabbitmqctl -q -n "$RABBITMQ_NODENAME" wait --timeout 60 "$RABBITMQ_PID_FILE" >/dev/null
  wait_port "$RABBIT_UI_PORT" "RabbitMQ management" 60
}
# SIGTERM is RabbitMQ's graceful stop (as `rabbitmqctl stop`), and needs neither the node name
# nor a pid file, which `rabbitmqctl stop <pid file>` waits for forever.
stop_rabbitmq() { stop_dep rabbitmq RabbitMQ "$RABBITMQ_PID_FILE" "$RABBIT_PORT" beam.smp; }

start_ferretdb() {
  if port_open "$FERRET_PORT"; then say "FerretDB already running on 127.0.0.1:$FERRET_PORT"; return; fi
  say "starting FerretDB v1.24.2 (SQLite backend, telemetry disabled) on 127.0.0.1:$FERRET_PORT"
  # The Go collector ran ~9% of FerretDB's CPU under load at the default GOGC, ~6% at 400
  # (pprof, ADR 0004): collect only when the heap nears GOMEMLIMIT (its live heap is ~50-160 MB).
  # SQLite: statement journals in memory and a WAL checkpoint every 10,000 pages instead of 1,000
  # (random-_id inserts into 100k docs: 62 -> 50 us of FerretDB CPU per document; durability as before).
  local pragmas=${CARBON_FERRET_SQLITE_PRAGMAS-"_pragma=temp_store(2)&_pragma=wal_autocheckpoint(10000)"}
  # One SQLite transaction per 1,000 documents of an insert instead of per 100 (500-document
  # batches: a further 51 -> 42 us per document).
  local batch_size=${CARBON_FERRET_BATCH_SIZE:-1000}
  GOGC=${CARBON_FERRET_GOGC:-off} GOMEMLIMIT=${CARBON_FERRET_GOMEMLIMIT:-1GiB} setsid nohup "$BIN/ferretdb" --handler=sqlite --sqlite-url="file:$DATA/ferretdb/?$pragmas" --test-batch-size="$batch_size" \
    --listen-addr="127.0.0.1:$FERRET_PORT" --debug-addr="127.0.0.1:$FERRET_DEBUG_PORT" --telemetry=disable \
    --state-dir="$DATA/ferretdb-state" --log-level=warn \
    >"$DATA/logs/ferretdb.log" 2>&1 </dev/null &
  echo $! > "$DATA/ferretdb.pid"
  write_owner ferretdb $!
  wait_port "$FERRET_PORT" FerretDB 30
}
stop_ferretdb() { stop_dep ferretdb FerretDB "$DATA/ferretdb.pid" "$FERRET_PORT" ferretdb; }

start_jaeger() {
  if port_open 16686; then say "Jaeger already running (UI http://127.0.0.1:16686)"; return; fi
  say "starting Jaeger v1.76.0 (OTLP 127.0.0.1:4317/4318, UI http://127.0.0.1:16686)"
  setsid nohup "$BIN/jaeger" --config "$ROOT/deploy/local/jaeger.yaml" >"$DATA/logs/jaeger.log" 2>&1 </dev/null &
  echo $! > "$DATA/jaeger.pid"
  write_owner jaeger $!
  wait_port 16686 Jaeger 30
  wait_port 4318 "Jaeger OTLP" 30
}
stop_jaeger() { stop_dep jaeger Jaeger "$DATA/jaeger.pid" 16686 jaeger; }

status() {
  local row name port dep owned pid
  for row in "RabbitMQ:$RABBIT_PORT:rabbitmq:1" "RabbitMQ-management:$RABBIT_UI_PORT:rabbitmq:" \
             "FerretDB:$FERRET_PORT:ferretdb:1" "Jaeger-OTLP:4318:jaeger:" "Jaeger-UI:16686:jaeger:1"; do
    IFS=: read -r name port dep owned <<<"$row"
    selected "$dep" || continue
    if ! port_open "$port"; then printf '  %-20s 127.0.0.1:%-6s down\n' "$name" "$port"; continue; fi
    printf '  %-20s 127.0.0.1:%-6s up' "$name" "$port"
    if [ -n "$owned" ]; then
      pid=$(pid_on_port "$port")
      printf '  pid %-7s started by: %s' "${pid:-?}" "$(who "$dep" "${pid:-?}")"
    fi
    echo
  done
}

stop_owned() {  # owner token: stop each selected dependency whose owner file names it
  local dep owner kept=() rc=0
  for dep in jaeger ferretdb rabbitmq; do
    selected "$dep" || continue
    owner=$(owner_field "$dep" owner)
    if [ -n "$owner" ] && [ "$owner" = "$1" ]; then
      "stop_$dep" || rc=1
    else
      kept+=("$dep")
    fi
  done
  [ ${#kept[@]} -eq 0 ] || say "left running, not started by this run: ${kept[*]}"
  return $rc
}

SELECTED=${CARBON_DEPS-rabbitmq ferretdb jaeger}  # set but empty: none
command=${1:-start}
if [ $# -gt 1 ] && [ "$command" != stop-owned ]; then SELECTED="${*:2}"; fi
for dep in $SELECTED; do
  case $dep in rabbitmq|ferretdb|jaeger) ;; *) echo "unknown dependency: $dep (rabbitmq|ferretdb|jaeger)"; exit 2 ;; esac
done
selected() { case " $SELECTED " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

case "$command" in
  start)
    for dep in rabbitmq ferretdb jaeger; do
      if selected "$dep"; then "start_$dep"; fi
    done ;;
  stop)  # every stop is tried, each bounded; the exit status says whether one failed
    rc=0
    for dep in jaeger ferretdb rabbitmq; do
      if selected "$dep"; then "stop_$dep" || rc=1; fi
    done
    exit $rc ;;
  stop-owned)
    [ -n "${2:-}" ] || { echo "usage: $0 stop-owned OWNER"; exit 2; }
    stop_owned "$2" ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status [rabbitmq|ferretdb|jaeger ...] | stop-owned OWNER"; exit 2 ;;
esac
