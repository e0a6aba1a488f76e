#!/usr/bin/env bash
# A local Redis Cluster for tests: three primaries and three replicas of Debian's
# redis-server on 127.0.0.1, ports BASE..BASE+5 (cluster bus BASE+10000..), data and logs in
# ${TMPDIR:-/tmp}/sessionbase-redis-cluster-BASE. Nothing is persisted.
#
#   scripts/redis-cluster.sh start [BASE]     start, wait for cluster_state:ok, print the URLs
#   scripts/redis-cluster.sh stop [BASE]      stop the nodes this script started (by PID), remove the directory
#   scripts/redis-cluster.sh urls [BASE]      the node URLs, comma-separated (REDIS_CLUSTER_URLS)
#   scripts/redis-cluster.sh start-node PORT [BASE]   start one stopped or killed node again (it rejoins)
#
# BASE defaults to $REDIS_CLUSTER_BASE_PORT, else 7101. $REDIS_CLUSTER_NODE_TIMEOUT (ms,
# default 1000) is cluster-node-timeout: how long a silent primary takes to be failed over.
# `start` exits with status 3, starting nothing, when one of the ports is taken.
set -euo pipefail

command="${1:-}"
case "$command" in
  start | stop | urls) base="${2:-${REDIS_CLUSTER_BASE_PORT:-7101}}" ;;
  start-node) base="${3:-${REDIS_CLUSTER_BASE_PORT:-7101}}" ;;
  *)
    echo "usage: $0 start|stop|urls [BASE] | start-node PORT [BASE]" >&2
    exit 2
    ;;
esac
node_timeout="${REDIS_CLUSTER_NODE_TIMEOUT:-1000}"
dir="${TMPDIR:-/tmp}/sessionbase-redis-cluster-$base"
ports=$(seq "$base" $((base + 5)))

urls() {
  local out="" port
  for port in $ports; do out="${out:+$out,}redis://127.0.0.1:$port/"; done
  echo "$out"
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_node() {
  local port="$1"
  # cluster-require-full-coverage no: the shards that are up keep serving while one fails
  # over. cluster-replica-validity-factor 0: a replica always takes over, however long its
  # primary was silent. Diskless sync without delay: replicas are in sync within moments.
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize yes \
    --pidfile "$dir/redis-$port.pid" --logfile "$dir/redis-$port.log" \
    --cluster-enabled yes --cluster-config-file "nodes-$port.conf" \
    --cluster-node-timeout "$node_timeout" --cluster-require-full-coverage no \
    --cluster-replica-validity-factor 0 --repl-diskless-sync yes \
    --repl-diskless-sync-delay 0 --save "" --appendonly no
}

# The PID in a pidfile if it is a redis-server (not a PID reused since); Redis removes its
# pidfile when it shuts down.
our_pid() {
  local pid
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [ "$(ps -p "$pid" -o comm= 2>/dev/null)" = "redis-server" ] && echo "$pid"
}

# Every node says cluster_state:ok and knows the three replicas as replicas, and every
# replica is in sync with its primary.
ready() {
  local port synced=0
  for port in $ports; do
    redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
    [ "$(redis-cli -p "$port" cluster nodes 2>/dev/null | grep -cE 'slave [0-9a-f]{40}')" -eq 3 ] || return 1
    if redis-cli -p "$port" info replication 2>/dev/null | grep -q '^master_link_status:up'; then
      synced=$((synced + 1))
    fi
  done
  [ "$synced" -eq 3 ]
}

stop() {
  local port pid pids=()
  for port in $ports; do
    if pid="$(our_pid "$dir/redis-$port.pid")"; then pids+=("$pid"); fi
  done
  for pid in "${pids[@]}"; do
    # A paused node (SIGSTOP in a test) must run to shut down.
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  rm -rf "$dir"
}

case "$command" in
  urls) urls ;;
  stop) stop ;;
  start-node) start_node "$2" ;;
  start)
    for port in $ports; do
      if listening "$port" || listening $((port + 10000)); then
        echo "port $port or $((port + 10000)) is taken" >&2
        exit 3
      fi
    done
    rm -rf "$dir"
    mkdir -p "$dir"
    # A failed start leaves nothing running.
    trap 'stop' ERR
    for port in $ports; do start_node "$port"; done
    for port in $ports; do
      for _ in $(seq 1 50); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
      done
    done
    nodes=""
    for port in $ports; do nodes="$nodes 127.0.0.1:$port"; done
    # shellcheck disable=SC2086
    redis-cli --cluster create $nodes --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 \
      || { cat "$dir/create.log" >&2; false; }
    for _ in $(seq 1 300); do
      ready && break
      sleep 0.1
    done
    ready || { echo "the cluster on $base.. did not become ready" >&2; false; }
    trap - ERR
    urls
    ;;
esac
