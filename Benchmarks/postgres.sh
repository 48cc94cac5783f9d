#!/usr/bin/env bash
# PostgreSQL backend figures for Benchmarks/RESULTS.md (issue 8): append throughput with one and two hubd nodes on
# one database, and end-to-end latency publish → SSE subscriber on the same node and across nodes.
#
#   Benchmarks/postgres.sh            (root, Debian 12 with postgresql; loopback only)
#   Benchmarks/postgres.sh appends    only the one-node append rows (a quick before/after)
#
# Starts a throwaway PostgreSQL (initdb in a temporary directory, default durability settings: fsync on,
# synchronous_commit on) on port 55433, two release hubd nodes on 24481/24482, and the shared kit's load generator.
# Nothing is pinned: PostgreSQL, both nodes and the generator share the machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=${BENCH:-$(cd ../shared/bench && pwd)}
OUT=${OUT:-/tmp/eventhub-pg-bench-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
LG=$BENCH/loadgen/bin/loadgen
[ -x "$LG" ] || "$BENCH/loadgen/build.sh"
# HUBD_BIN: a build to measure (Benchmarks/run.sh passes the one it measured); otherwise this tree's, built here.
if [ -n "${HUBD_BIN:-}" ]; then
  HUBD=$HUBD_BIN
else
  swift build -c release --product hubd >/dev/null
  HUBD=$PWD/.build/release/hubd
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PGDIR=$(mktemp -d /tmp/hub-bench-pg-XXXX)
PGPORT=55433
DURATION=${DURATION:-10s}
DEFAULT_STREAM='pg-{i}'

mkdir -p "$PGDIR/sock"; chown -R postgres:postgres "$PGDIR"
runuser -u postgres -- "$PGBIN/initdb" -D "$PGDIR/data" -U postgres -E UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDIR/sock -c max_connections=200 -c shared_buffers=256MB" start >/dev/null
# The nodes run inside the piped block below (a subshell): on any exit, stop them by their listen addresses.
trap 'pkill -f "$HUBD --listen 127.0.0.1:2448[12]" || true; runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null; rm -rf "$PGDIR"' EXIT
psql_() { runuser -u postgres -- psql -h "$PGDIR/sock" -p $PGPORT -U postgres -q "$@"; }
psql_ -c "CREATE ROLE hub LOGIN PASSWORD 'hub'"

PIDS=()
start_nodes() { # count; a fresh database each time
  psql_ -c "DROP DATABASE IF EXISTS hub WITH (FORCE)" -c "CREATE DATABASE hub OWNER hub"
  PIDS=()
  for n in $(seq 1 "$1"); do
    rm -rf "$OUT/node$n"
    "$HUBD" --listen 127.0.0.1:$((24480 + n)) --data-dir "$OUT/node$n" --auth open --log-level warning --store postgres \
      --postgres-url "postgres://hub:hub@127.0.0.1:$PGPORT/hub?sslmode=disable" >>"$OUT/hubd$n.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 100); do curl -sf localhost:$((24480 + n))/readyz >/dev/null && break; sleep 0.1; done
  done
}
stop_nodes() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }
node() { echo "http://127.0.0.1:$((24480 + $1))"; }
pub() { # label node publishers streams
  "$LG" publish --label "$1" --quiet --pub-url "$(node "$2")/v1/stream/{stream}" --content-type application/json \
    --create-url "$(node "$2")/v1/stream/{stream}" --create-method PUT --create-header 'Content-Type: application/json' --create-expect 2xx,409 \
    --stream-name "${STREAM_NAME:-$DEFAULT_STREAM}" --publishers "$3" --streams "$4" --size 100 --duration "$DURATION"
}
fanout() { # label pub-node sub-node subscribers rate
  "$LG" fanout --label "$1" --quiet --pub-url "$(node "$2")/v1/stream/{stream}" --content-type application/json \
    --create-url "$(node "$2")/v1/stream/{stream}" --create-method PUT --create-header 'Content-Type: application/json' --create-expect 2xx,409 \
    --mode sse --sub-url "$(node "$3")/v1/stream/{stream}?offset=-1&live=sse" --subscribers "$4" --rate "$5" --size 100 \
    --duration "$DURATION" --drain 10s
}

{
  start_nodes 1
  pub "1 node, 4 publishers, 1 stream" 1 4 1
  pub "1 node, 4 publishers, 100 streams (100 slots)" 1 4 100
  pub "1 node, 16 publishers, 100 streams (100 slots)" 1 16 100
  pub "1 node, 64 publishers, 1 stream" 1 64 1
  pub "1 node, 64 publishers, 100 streams (100 slots)" 1 64 100
  stop_nodes
  # The ceiling: plain single-row INSERTs of 100 bytes, each its own transaction (pgbench, same server, same
  # durability), with as many clients as the rows above have publishers.
  psql_ -d hub -c "CREATE TABLE IF NOT EXISTS bench_rows(id BIGSERIAL PRIMARY KEY, body BYTEA NOT NULL)"
  echo "INSERT INTO bench_rows(body) VALUES (convert_to(repeat('x', 100), 'UTF8'));" > "$OUT/insert.sql"
  chmod 644 "$OUT/insert.sql"; chmod 755 "$OUT"
  for clients in 4 16 64; do
    tps=$(runuser -u postgres -- "$PGBIN/pgbench" -n -h "$PGDIR/sock" -p $PGPORT -U postgres -c $clients -j 2 -T "${DURATION%s}" \
      -f "$OUT/insert.sql" hub 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    echo "{\"label\":\"pgbench ceiling: single-row INSERT transactions, $clients clients\",\"msgs_per_s\":${tps:-0}}"
  done
  if [ "${1:-}" = appends ]; then exit 0; fi
  start_nodes 1
  fanout "1 node, SSE, 100 subscribers, 200 msg/s" 1 1 100 200
  stop_nodes

  start_nodes 2
  # Both nodes write to the same stream (one slot: the cross-node ordering lock) at the same time.
  STREAM_NAME="shared-{i}" pub "2 nodes, node 1: 2 publishers, 1 shared stream" 1 2 1 &
  STREAM_NAME="shared-{i}" pub "2 nodes, node 2: 2 publishers, 1 shared stream" 2 2 1
  wait
  STREAM_NAME="a-{i}" pub "2 nodes, node 1: 8 publishers, 100 streams" 1 8 100 &
  STREAM_NAME="b-{i}" pub "2 nodes, node 2: 8 publishers, 100 streams" 2 8 100
  wait
  fanout "2 nodes, publish on 1, SSE on 2, 100 subscribers, 200 msg/s" 1 2 100 200
  fanout "2 nodes, publish on 1, SSE on 2, 1 subscriber, 200 msg/s" 1 2 1 200
  fanout "2 nodes, publish on 1, SSE on 1, 1 subscriber, 200 msg/s" 1 1 1 200
  stop_nodes

  # The same single-stream and 100-stream appends with PostgreSQL's synchronous_commit off for the hub's role:
  # an acknowledged append then survives hubd being killed, but not a crash of the database server's machine.
  psql_ -c "ALTER ROLE hub SET synchronous_commit = off"
  start_nodes 1
  pub "1 node, synchronous_commit=off, 4 publishers, 1 stream" 1 4 1
  pub "1 node, synchronous_commit=off, 4 publishers, 100 streams" 1 4 100
  stop_nodes
} | tee "$OUT/results.jsonl"
echo "results: $OUT/results.jsonl" >&2
