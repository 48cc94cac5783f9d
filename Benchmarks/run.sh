#!/usr/bin/env bash
# Reproduces Benchmarks/RESULTS.md on this machine (Debian 12, root, loopback only).
#
#   Benchmarks/run.sh [all|table|suite|batch|catchup|memory|store|auth|leave]
#
# table    every row of issue 14's table in one run, with one build: suite (plus SSE and WebSocket at 100 msgs/s),
#          batch three times, leave, and Benchmarks/postgres.sh appends
# suite    the shared kit's scenarios, EventHub and Nginx+Nchan side by side (../shared/bench/run_suite.sh):
#          noop wrkpub publish publish100 ws sse sselight lp idle; then publish with 64 publishers
# batch    100-message JSON batches (one POST = 100 messages of ~100 B), 4 publishers
# catchup  catch-up read throughput: wrk GETs of a 10 000-message stream from its start
# memory   hubd RSS after storing >= 1 GiB of records, then idle after a restart
# store    store-only appends (no HTTP): StoreBench
# leave    resident memory after 1000 SSE subscribers leave (two rounds, then 35 s idle)
# auth     the same publish run with --auth open and with --auth tokens and a minted token (auth overhead)
# Two builds against each other, one path at a time: Benchmarks/ab.sh; the heap of idle SSE connections by
# allocation site: Benchmarks/heap-idle.sh.
# Server and load generator are pinned to CPU 0 and CPU 1 (SERVER_CPUS / LOADGEN_CPUS). HUBD=path runs another
# hubd binary (a copy of an earlier build, to compare) in the scenarios this script starts itself.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=${BENCH:-$(cd ../shared/bench && pwd)}
OUT=${OUT:-/tmp/eventhub-bench-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
what=${1:-all}
LG=$BENCH/loadgen/bin/loadgen
[ -x "$LG" ] || "$BENCH/loadgen/build.sh"
swift build -c release --product hubd >/dev/null
swift build -c release --product StoreBench >/dev/null
HUBD=${HUBD:-$PWD/.build/release/hubd}
export EVENTHUB_BIN=$HUBD  # the shared kit's eventhub profile runs the same build
PORT=24480

# Whether this run includes `part`.
wants() { [[ $what == all || $what == "$1" || ( $what == table && " suite batch leave " == *" $1 "* ) ]]; }

start_hubd() { # data-dir [extra args]
  local dir=$1; shift
  taskset -c "${SERVER_CPUS:-0}" "$HUBD" --listen 127.0.0.1:$PORT --data-dir "$dir" --log-level warning "$@" >>"$OUT/hubd.log" 2>&1 &
  echo $! > "$OUT/hubd.pid"
  for _ in $(seq 1 100); do curl -sf localhost:$PORT/readyz >/dev/null && return 0; sleep 0.1; done
  echo "hubd did not start" >&2; exit 1
}
stop_hubd() { kill -TERM "$(cat "$OUT/hubd.pid")" 2>/dev/null || true; wait "$(cat "$OUT/hubd.pid")" 2>/dev/null || true; }
pin() { taskset -c "${LOADGEN_CPUS:-1}" "$@"; }

batch_body() { # 100 JSON messages of ~100 bytes each; {marker} lets the generator match requests
  python3 -c 'import sys; print("[" + ",".join("{\"m\":\"{marker}\",\"i\":%d,\"p\":\"%s\"}" % (i, "x"*60) for i in range(100)) + "]")'
}

if wants suite; then
  QUIET_WAIT=20 "$BENCH/run_suite.sh" -s "noop wrkpub publish publish100 ws sse sselight lp idle" -o "$OUT/suite" \
      "$BENCH/profiles/nchan.env" "$BENCH/profiles/eventhub.env" | tee "$OUT/suite.txt"
  PUBLISHERS=64 QUIET_WAIT=20 "$BENCH/run_suite.sh" -s "publish" -o "$OUT/suite64" \
      "$BENCH/profiles/nchan.env" "$BENCH/profiles/eventhub.env" | tee "$OUT/suite64.txt"
  if [[ $what == table ]]; then
    RATE=100 QUIET_WAIT=20 "$BENCH/run_suite.sh" -s "sse ws" -o "$OUT/rate100" \
        "$BENCH/profiles/nchan.env" "$BENCH/profiles/eventhub.env" | tee "$OUT/rate100.txt"
  fi
fi

if wants batch; then
  # Three runs for the table: this VM's speed drifts from run to run.
  for _ in $(seq 1 "$([[ $what == table ]] && echo 3 || echo 1)"); do
    dir=$(mktemp -d); start_hubd "$dir" --auth open
    pin "$LG" publish --pid "$(cat "$OUT/hubd.pid")" --label eventhub --tag batch100 \
        --create-url "http://127.0.0.1:$PORT/v1/stream/{stream}" --create-header 'Content-Type: application/json' \
        --pub-url "http://127.0.0.1:$PORT/v1/stream/{stream}" --content-type application/json \
        --body "$(batch_body)" --size 10 --publishers 4 --streams 1 --duration 10s | tee -a "$OUT/batch100.txt"
    stop_hubd; rm -rf "$dir"
  done
fi

if wants catchup; then
  dir=$(mktemp -d); start_hubd "$dir" --auth open
  curl -s -X PUT -H 'Content-Type: application/json' localhost:$PORT/v1/stream/bench/catchup >/dev/null
  body=$(batch_body)
  for _ in $(seq 1 100); do curl -s -X POST -H 'Content-Type: application/json' --data "$body" localhost:$PORT/v1/stream/bench/catchup >/dev/null; done
  echo "catch-up: 10000 messages, $(curl -s localhost:$PORT/v1/stream/bench/catchup | wc -c) bytes per full read" | tee "$OUT/catchup.txt"
  pin "$LG" cpuwrap --pid "$(cat "$OUT/hubd.pid")" --label eventhub --tag catchup -- \
      wrk -t1 -c4 -d10s --latency "http://127.0.0.1:$PORT/v1/stream/bench/catchup?offset=-1" | tee -a "$OUT/catchup.txt"
  stop_hubd; rm -rf "$dir"
fi

if wants memory; then
  dir=$(mktemp -d); start_hubd "$dir" --auth open
  pid=$(cat "$OUT/hubd.pid")
  # 1 KiB messages, 100 per request, until the database holds more than 1 GiB.
  big=$(python3 -c 'print("[" + ",".join("{\"m\":\"{marker}\",\"p\":\"%s\"}" % ("y"*1000) for i in range(100)) + "]")')
  while [ "$(du -sb "$dir" | cut -f1)" -lt $((1100 * 1024 * 1024)) ]; do
    pin "$LG" publish --quiet --create-url "http://127.0.0.1:$PORT/v1/stream/{stream}" --create-header 'Content-Type: application/json' \
        --pub-url "http://127.0.0.1:$PORT/v1/stream/{stream}" --content-type application/json \
        --body "$big" --size 10 --publishers 4 --streams 8 --duration 10s >/dev/null
  done
  { echo "stored: $(du -sh "$dir" | cut -f1) in $dir"
    echo "RSS after filling: $(awk '/VmRSS/{print $2" "$3}' /proc/$pid/status)"
    stop_hubd; start_hubd "$dir" --auth open; pid=$(cat "$OUT/hubd.pid"); sleep 2
    echo "RSS idle after restart: $(awk '/VmRSS/{print $2" "$3}' /proc/$pid/status)"
    curl -s "localhost:$PORT/v1/stream/lg-x-0?offset=-1" >/dev/null || true
    for s in $(seq 0 7); do :; done
  } | tee "$OUT/memory.txt"
  stop_hubd; rm -rf "$dir"
fi

if wants auth; then
  for mode in open tokens open tokens; do
    dir=$(mktemp -d); start_hubd "$dir" --auth "$mode"
    token=none
    if [ "$mode" = tokens ]; then
      admin=$(cat "$dir/admin.token")
      curl -sf -X POST -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' localhost:$PORT/v1/admin/slots -d '{"name":"bench"}' >/dev/null
      token=$(curl -sf -X POST -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' localhost:$PORT/v1/admin/tokens \
          -d '{"slot":"bench","scopes":["create","append"],"label":"bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    fi
    pin "$LG" publish --pid "$(cat "$OUT/hubd.pid")" --label "eventhub-$mode" --tag "auth-$mode" --header "Authorization: Bearer $token" \
        --stream-name "bench/s{i}" --create-url "http://127.0.0.1:$PORT/v1/stream/{stream}" --create-header 'Content-Type: application/json' \
        --pub-url "http://127.0.0.1:$PORT/v1/stream/{stream}" --content-type application/json \
        --publishers 4 --streams 1 --size 100 --duration 10s | tee -a "$OUT/auth.txt" | grep -E "acknowledged|CPU \(cores\)"
    stop_hubd; rm -rf "$dir"
  done
fi

if wants store; then
  for a in 1 4 64; do taskset -c "${SERVER_CPUS:-0}" .build/release/StoreBench $a $((40000 / a)) 1; done | tee "$OUT/store.txt"
  taskset -c "${SERVER_CPUS:-0}" .build/release/StoreBench 4 1000 100 | tee -a "$OUT/store.txt"
  taskset -c "${SERVER_CPUS:-0}" .build/release/StoreBench 4 5000 1 full | tee -a "$OUT/store.txt"
fi
if wants leave; then
  dir=$(mktemp -d); start_hubd "$dir" --auth open
  pid=$(cat "$OUT/hubd.pid")
  rss() { awk '/VmRSS/{print $2" "$3}' /proc/$pid/status; }
  { echo "RSS at start: $(rss)"
    for round in 1 2; do
      pin "$LG" fanout --quiet --create-url "http://127.0.0.1:$PORT/v1/stream/{stream}" --create-method PUT \
          --create-header 'Content-Type: application/json' --create-expect '2xx,409' \
          --pub-url "http://127.0.0.1:$PORT/v1/stream/{stream}" --content-type application/json \
          --mode sse --sub-url "http://127.0.0.1:$PORT/v1/stream/{stream}?offset=-1&live=sse" \
          --subscribers 1000 --rate 1000 --size 100 --duration 5s --drain 10s >/dev/null
      sleep 3; echo "RSS 3 s after round $round's 1000 subscribers left: $(rss)"
    done
    sleep 35; echo "RSS 35 s later: $(rss)"
  } | tee "$OUT/leave.txt"
  stop_hubd; rm -rf "$dir"
fi
if [[ $what == table ]]; then
  HUBD_BIN=$HUBD OUT=$OUT/postgres bash Benchmarks/postgres.sh appends | tee "$OUT/postgres.txt"
fi
echo "results in $OUT"
