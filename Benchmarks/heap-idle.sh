#!/usr/bin/env bash
# Where an idle SSE connection's memory goes: hubd under heaptrack, N idle SSE readers (loadgen idle), then the
# heap at its peak grouped by the innermost allocating frame that is not the allocator or the Swift runtime,
# per connection. (How Benchmarks/RESULTS.md's idle-connection steps were found.)
#
#   Benchmarks/heap-idle.sh HUBD_BINARY [connections=2000]
#
# Needs heaptrack (apt-get install heaptrack). The total includes hubd's own baseline (~1 KiB per connection at
# 2,000): compare two builds, or use the shared kit's `idle` scenario for RSS per connection.
set -euo pipefail
bin=$1 n=${2:-2000}
BENCH=${BENCH:-$(cd "$(dirname "$0")/../../shared/bench" && pwd)}
LG=$BENCH/loadgen/bin/loadgen
[ -x "$LG" ] || "$BENCH/loadgen/build.sh"
out=$(mktemp -d)
mkdir -p "$out/data"
heaptrack -o "$out/hubd" "$bin" --listen 127.0.0.1:24437 --data-dir "$out/data" --auth open >"$out/log" 2>&1 &
for _ in $(seq 1 100); do curl -sf localhost:24437/readyz >/dev/null && break; sleep 0.1; done
pid=$(pgrep -f "^$bin --listen 127.0.0.1:24437" | head -1)
base=http://127.0.0.1:24437
"$LG" idle --label heap --pid "$pid" --create-url "$base/v1/stream/{stream}" --create-method PUT \
    --create-header 'Content-Type: application/json' --create-expect '2xx,409' --pub-url "$base/v1/stream/{stream}" \
    --content-type application/json --mode sse --sub-url "$base/v1/stream/{stream}?offset=-1&live=sse" \
    --subscribers "$n" --connect-concurrency 200 --hold 5s --broadcast 3 >"$out/loadgen.txt" 2>&1
kill -TERM "$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
sleep 1
heaptrack_print -f "$out"/hubd.*zst --flamegraph-cost-type peak -F "$out/peak.txt" >/dev/null 2>&1
python3 - "$out/peak.txt" "$n" <<'PY' | swift demangle --simplified | cut -c1-200
import collections, re, sys
path, n = sys.argv[1], int(sys.argv[2])
runtime = re.compile(r'swift_slowAlloc|swift_allocObject|malloc|swift_task_alloc|operator new|swift_allocBox|'
                     r'allocateUninitialized|swift::|__libc|realloc|calloc|swift_job|swift_task_create|sSa|sSD|sSh|'
                     r'ByteBufferV|_Storage|Allocator|CircularBuffer|^0x|swift_retain|_ContiguousArray|sSS|ss[0-9]|'
                     r's10Foundation|TaskAlloc')
cost = collections.Counter()
for line in open(path):
    stack, bytes_ = line.rstrip('\n').rsplit(' ', 1)
    frames = [f for f in stack.split(';') if f]
    site = next((f for f in reversed(frames) if not runtime.search(f)), '?')
    cost[site[:200]] += int(bytes_)
print(f"{sum(cost.values()) / n:8.0f} B per connection in all")
for site, bytes_ in cost.most_common(25):
    print(f"{bytes_ / n:8.0f}  {site}")
PY
echo "(heaptrack data in $out)"
