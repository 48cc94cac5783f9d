#!/usr/bin/env bash
# A/B runs of two hubd builds on one path, alternately, same pinning (hubd on CPU 0, the generator on CPU 1):
# how each step in Benchmarks/RESULTS.md was measured against the build before it.
#
#   Benchmarks/ab.sh publish  OLD_HUBD NEW_HUBD [rounds] [publishers]   # loadgen publish, 1 stream, 100 B, 10 s
#   Benchmarks/ab.sh longpoll OLD_HUBD NEW_HUBD [rounds] [msgs/s]       # loadgen fanout, 1000 long-pollers
#   Benchmarks/ab.sh sse|ws   OLD_HUBD NEW_HUBD [rounds] [msgs/s]       # loadgen fanout, 1000 subscribers
#
# Prints one line per run: throughput, server cores, server CPU µs per message (or delivery), latency.
# Compare within one invocation only: this VM's speed drifts between runs by up to 40 %.
set -euo pipefail
mode=$1 old=$2 new=$3 rounds=${4:-3} arg=${5:-}
BENCH=${BENCH:-$(cd "$(dirname "$0")/../../shared/bench" && pwd)}
LG=$BENCH/loadgen/bin/loadgen
[ -x "$LG" ] || "$BENCH/loadgen/build.sh"
PORT=24437
BASE=http://127.0.0.1:$PORT
CREATE=(--create-url "$BASE/v1/stream/{stream}" --create-method PUT --create-header 'Content-Type: application/json'
        --create-expect '2xx,409' --pub-url "$BASE/v1/stream/{stream}" --content-type application/json)

run_one() { # hubd-binary
  local bin=$1 dir pid out
  dir=$(mktemp -d)
  taskset -c 0 "$bin" --listen 127.0.0.1:$PORT --data-dir "$dir" --auth open --log-level warning >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -sf $BASE/readyz >/dev/null && break; sleep 0.1; done
  case $mode in
    publish) out=$(taskset -c 1 "$LG" publish --label ab --pid $pid "${CREATE[@]}" --publishers "${arg:-4}" --streams 1 --size 100 --duration 10s) ;;
    longpoll) out=$(taskset -c 1 "$LG" fanout --label ab --pid $pid "${CREATE[@]}" --mode longpoll \
                  --sub-url "$BASE/v1/stream/{stream}?offset={offset}&live=long-poll&cursor={cursor}" --var offset=-1 \
                  --carry Stream-Next-Offset=offset --carry Stream-Cursor=cursor \
                  --subscribers 1000 --rate "${arg:-50}" --size 100 --duration 10s --drain 15s) ;;
    sse) out=$(taskset -c 1 "$LG" fanout --label ab --pid $pid "${CREATE[@]}" --mode sse --sub-url "$BASE/v1/stream/{stream}?offset=-1&live=sse" \
                  --subscribers 1000 --rate "${arg:-1000}" --size 100 --duration 10s --drain 15s) ;;
    ws) out=$(taskset -c 1 "$LG" fanout --label ab --pid $pid "${CREATE[@]}" --mode ws --sub-url "ws://127.0.0.1:$PORT/v1/ws?stream={stream}&since=0" \
                  --subscribers 1000 --rate "${arg:-1000}" --size 100 --duration 10s --drain 15s) ;;
    *) echo "unknown mode $mode" >&2; exit 2 ;;
  esac
  kill -TERM $pid; wait $pid 2>/dev/null || true
  rm -rf "$dir"
  tail -n 1 <<<"$out" | python3 -c '
import sys, json
d = json.loads(sys.stdin.read()); cores = d["cpu"]["server_cores"]; lat = d["latency"]
rate = d.get("msgs_per_s") or d.get("delivered_per_s")
print("%9.0f/s  server %.3f cores  %6.1f us each  p50 %.2f ms  p99 %.2f ms"
      % (rate, cores, cores * 1e6 / rate, lat["p50_us"] / 1000, lat["p99_us"] / 1000))'
}

for _ in $(seq 1 "$rounds"); do
  printf '%-8s ' old; run_one "$old"
  printf '%-8s ' new; run_one "$new"
done
