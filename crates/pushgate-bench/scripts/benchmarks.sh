#!/usr/bin/env bash
# Reproduces the transport tables and charts of docs/benchmarks.md (about 30 minutes).
#
# Needs the release build and the nchan peer's packages (the nchan profile restarts the peer
# before each run, one per transport or one per --concurrent run of several, with
# crates/pushgate-bench/nchan/{stop,start}.sh and the nginx.conf beside them):
#   cargo build --release -p pushgate -p pushgate-bench
#   apt-get install -y --no-install-recommends nginx libnginx-mod-nchan
#
# Usage: crates/pushgate-bench/scripts/benchmarks.sh [section...]
#   sections: default c18k knee knee2k pollcost coalesce charts (default: all of them, in that order)
#   issue 17 (not in the default list): lp20 lp50 stream40k stream100k overload200k, or issue17 for all five;
#   redis10 redis1 (two nodes on Redis against one node; needs redis-server);
#   overload1core (each server pinned to CPU 0, the bench to CPU 1: 200k, 400k, 600k deliveries/s offered);
#   floor (user and system CPU per delivery of both servers, lp50 and stream100k)
set -euo pipefail
ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
BENCH=${BENCH:-${CARGO_TARGET_DIR:-$ROOT/target}/release/pushgate-bench}
OUT=$ROOT/docs/images/bench
NCHAN=$ROOT/crates/pushgate-bench/profiles/nchan.toml
mkdir -p "$OUT/results"

run() { # name, then the bench's arguments; PIN=N runs the bench on CPU N alone
  local name=$1; shift
  local pin=()
  [[ -n ${PIN:-} ]] && pin=(taskset -c "$PIN")
  echo "== $name: load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  "${pin[@]}" "$BENCH" "$@" --json "$OUT/results/$name.json" | tee "$OUT/results/$name.txt"
}

both() { # name, then the scenario's arguments: pushgate (a child), then nchan
  local name=$1; shift
  run "$name-pushgate" "$@"
  run "$name-nchan" --target-profile "$NCHAN" "$@"
}

# Two gateway nodes on one Redis (a private redis-server without persistence, ports 16390, 18081 and
# 18082), all three children of one shell whose pid the bench is given, so its "server CPU" and memory
# are the three processes' together. Subscribers and the publisher use node A; node B applies every
# event and delivers none, so this is the least a second node adds. Then the same scenario on one
# node without Redis, back to back.
listening() { # port: waits up to 10 s for something to listen on 127.0.0.1:port
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on 127.0.0.1:$1" >&2; return 1
}

cluster() { # name, then the scenario's arguments
  local name=$1; shift
  local gw=${GATEWAY:-$(dirname "$BENCH")/pushgate} dir
  command -v redis-server >/dev/null || { echo "redis-server is not installed (apt-get install redis-server)" >&2; exit 1; }
  dir=$(mktemp -d)
  (
    trap 'kill $(jobs -p) 2>/dev/null; exit 0' TERM INT EXIT
    redis-server --port 16390 --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >"$dir/redis.log" &
    listening 16390
    for node in 1 2; do
      PUSHGATE_MAX_CONNECTIONS_PER_IP=0 PUSHGATE_PUBLISH_RATE=0 "$gw" serve --no-demo \
        --listen "127.0.0.1:1808$node" --redis redis://127.0.0.1:16390 --state-file "$dir/state$node" \
        >"$dir/node$node.log" 2>&1 &
    done
    wait
  ) &
  local group=$!
  listening 18081 && listening 18082 || { cat "$dir"/*.log >&2; kill "$group"; exit 1; }
  run "$name-redis2" --url http://127.0.0.1:18081 --server-pid "$group" "$@" || true
  kill "$group"; wait "$group" 2>/dev/null || true
  rm -rf "$dir"
  run "$name-one" "$@"
}

# Starts a gateway on 127.0.0.1:18090 as the bench starts its own child (no per-address or
# publish limits), logging to dir/pushgate.log, behind an optional command prefix (taskset -c 0);
# leaves its pid in $gateway_pid. dir, then the prefix.
start_gateway() {
  local dir=$1; shift
  PUSHGATE_MAX_CONNECTIONS_PER_IP=0 PUSHGATE_PUBLISH_RATE=0 "$@" "${GATEWAY:-$(dirname "$BENCH")/pushgate}" serve \
    --no-demo --listen 127.0.0.1:18090 --max-connections 20000 >"$dir/pushgate.log" 2>&1 &
  gateway_pid=$!
  listening 18090 || { cat "$dir/pushgate.log" >&2; kill "$gateway_pid"; exit 1; }
}

# Past the knee on purpose: the server pinned to CPU 0 and the bench to CPU 1 (taskset), so the
# server has one core whatever the bench needs. pushgate is started here (port 18090) and given to
# the bench by --url and --server-pid; nchan through a copy of its profile whose start command pins
# it. name, then the scenario's arguments.
pinned() {
  local name=$1; shift
  local dir here
  command -v taskset >/dev/null || { echo "taskset is not installed (util-linux)" >&2; exit 1; }
  dir=$(mktemp -d)
  start_gateway "$dir" taskset -c 0
  PIN=1 run "$name-pushgate" --url http://127.0.0.1:18090 --server-pid "$gateway_pid" "$@" || true
  kill "$gateway_pid"; wait "$gateway_pid" 2>/dev/null || true
  here=$(dirname "$NCHAN")/../nchan
  here=$(cd "$here" && pwd)
  sed -e "s#^stop_command = .*#stop_command = [\"$here/stop.sh\"]#" \
      -e "s#^start_command = .*#start_command = [\"taskset\", \"-c\", \"0\", \"$here/start.sh\"]#" \
      "$NCHAN" >"$dir/nchan.toml"
  PIN=1 run "$name-nchan" --target-profile "$dir/nchan.toml" "$@"
  "$here/stop.sh" >/dev/null
  rm -rf "$dir"
}

ticks() { # pid...: user and system clock ticks of the processes and their children, summed
  local user=0 system=0 pid child u s
  for pid in "$@"; do
    for child in "$pid" $(pgrep -P "$pid"); do
      read -r u s < <(awk '{print $14, $15}' "/proc/$child/stat")
      user=$((user + u)); system=$((system + s))
    done
  done
  echo "$user $system"
}

# User and system CPU per delivery of one server (pushgate or nchan) while the bench drives it for
# 20 s; sampled from /proc between 8 s and 18 s. name, target, deliveries per second, then the
# scenario's arguments.
split() {
  local name=$1 target=$2 rate=$3; shift 3
  local dir pid bench before after hz
  dir=$(mktemp -d); hz=$(getconf CLK_TCK)
  if [[ $target == pushgate ]]; then
    start_gateway "$dir"
    pid=$gateway_pid
    "$BENCH" --url http://127.0.0.1:18090 --server-pid "$pid" --duration 20s "$@" >"$dir/bench.txt" 2>&1 &
  else
    "$BENCH" --target-profile "$NCHAN" --duration 20s "$@" >"$dir/bench.txt" 2>&1 &
  fi
  bench=$!
  sleep 8
  [[ $target == pushgate ]] || pid=$(cat /tmp/nchan-peer/nginx.pid)
  before=$(ticks "$pid"); sleep 10; after=$(ticks "$pid")
  wait "$bench" || true
  [[ $target == pushgate ]] && { kill "$pid"; wait "$pid" 2>/dev/null || true; }
  read -r u0 s0 <<<"$before"; read -r u1 s1 <<<"$after"
  awk -v n="$name" -v t="$target" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$hz" -v r="$rate" 'BEGIN {
    printf "%s %s: user %.2f us, system %.2f us per delivery (%d and %d ticks in 10 s at %d/s)\n",
      n, t, u / hz * 1e6 / (r * 10), s / hz * 1e6 / (r * 10), u, s, r }' | tee -a "$OUT/results/floor.txt"
  grep -E "^ *$target " "$dir/bench.txt" | tee -a "$OUT/results/floor.txt"
  rm -rf "$dir"
}

for section in "${@:-default c18k knee knee2k pollcost coalesce charts}"; do
  for s in $section; do
    case $s in
      # 1,000 subscribers, 10 topics, 1,000 publishes/s of 100 B for 30 s: 100,000 deliveries/s.
      default) both default ;;
      # 18,000 concurrent subscribers, 18,000 deliveries/s.
      c18k) both c18k --transports sse,ws --subscribers 18000 --topics 100 --rate 100 ;;
      # One topic: each of the 100 publishes/s reaches all 1,000 subscribers at once.
      knee) both knee --transports sse,ws --subscribers 1000 --topics 1 --rate 100 ;;
      # The issue's latency target as nchan's knee was measured: 1,000 SSE and 1,000 WebSocket
      # subscribers of one topic connected at the same time, 50 publishes/s: 100,000 deliveries/s.
      knee2k) both knee2k --transports sse,ws --subscribers 1000 --topics 1 --rate 50 --concurrent ;;
      # The default scenario with the gateway's opt-in coalescing window (pushgate only: nchan has
      # none; compare with default-nchan). The gateway child inherits PUSHGATE_COALESCE.
      coalesce)
        for window in 10ms 50ms; do
          PUSHGATE_COALESCE=$window run "coalesce-$window-pushgate" --transports longpoll,sse,ws
        done ;;
      # What one short-poll request costs: 10,000 pollers, almost no publishing.
      pollcost) both pollcost --transports poll --subscribers 10000 --topics 10 --rate 10 ;;
      # Issue 17: every publish on ONE ordered keep-alive connection (open loop: each is sent at its
      # scheduled time, and latency counts from that time), 1,000 subscribers of one topic.
      # Long pollers re-poll at once, so at 20 and 50 publishes/s each answer carries one event
      # (the report's req/msg is then about 1.00; compare with the default scenario's 0.46).
      lp20) both lp20 --transports longpoll --subscribers 1000 --topics 1 --rate 20 --publish-connections 1 ;;
      lp50) both lp50 --transports longpoll --subscribers 1000 --topics 1 --rate 50 --publish-connections 1 ;;
      # 1,000 SSE and 1,000 WebSocket subscribers at once: 40,000 and 100,000 deliveries/s.
      stream40k) both stream40k --transports sse,ws --subscribers 1000 --topics 1 --rate 20 --concurrent --publish-connections 1 ;;
      stream100k) both stream100k --transports sse,ws --subscribers 1000 --topics 1 --rate 50 --concurrent --publish-connections 1 ;;
      # Past the knee: 200,000 deliveries/s offered; what counts is loss (none allowed) and p99.
      overload200k) both overload200k --transports sse,ws --subscribers 1000 --topics 1 --rate 100 --concurrent --publish-connections 1 --drain 30s ;;
      issue17) "$0" lp20 lp50 stream40k stream100k overload200k ;;
      # Issue 17's floor: how much of each server's CPU per delivery is the kernel's (system time).
      floor)
        : >"$OUT/results/floor.txt"
        for target in pushgate nchan; do
          split lp50 "$target" 50000 --transports longpoll --subscribers 1000 --topics 1 --rate 50 --publish-connections 1
          split stream100k "$target" 100000 --transports sse,ws --subscribers 1000 --topics 1 --rate 50 --concurrent \
            --publish-connections 1
        done
        "$(dirname "$NCHAN")/../nchan/stop.sh" >/dev/null ;;
      # Issue 17's graceful overload past the knee: each server on one core, 1,000 SSE and 1,000
      # WebSocket subscribers of one topic, 100, 200 and 300 publishes/s (200k to 600k deliveries/s).
      overload1core)
        for rate in 100 200 300; do
          pinned "overload1core-$((rate * 2))k" --transports sse,ws --subscribers 1000 --topics 1 --rate "$rate" \
            --concurrent --publish-connections 1 --duration 10s --drain 30s
        done ;;
      # Issue 17's Redis path: CPU per delivery of two nodes and Redis against one node alone, with
      # 100 SSE subscribers per topic (10 topics, 1,000 publishes/s) and with 1,000 on one topic
      # (50 publishes/s), both 100,000 deliveries/s.
      redis10) cluster redis10 --transports sse --subscribers 1000 --topics 10 --rate 1000 --publish-connections 1 ;;
      redis1) cluster redis1 --transports sse --subscribers 1000 --topics 1 --rate 50 --publish-connections 1 ;;
      charts) "$BENCH" charts --out "$OUT" "$OUT/results/default-pushgate.json" "$OUT/results/default-nchan.json" ;;
      *) echo "unknown section $s" >&2; exit 2 ;;
    esac
  done
done
