#!/usr/bin/env bash
# Benchmarks of `fpolicy-bridge serve` with fpolicy-sim on the same machine
# (results and the machine they came from: docs/benchmarks.md).
#   scripts/bench-serve.sh [async|identity|sync|rss|reopen|all]
# BENCH_SECS shortens the 60 s / 30 s runs for a quick look.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
secs=${BENCH_SECS:-60}
sync_secs=${BENCH_SECS:-30}
cargo build --release -q -p fpolicy-bridge -p fpolicy-sim
cargo build --release -q -p fpolicy-bridge --example fill-spool
bin=target/release/fpolicy-bridge
sim=target/release/fpolicy-sim
work=$(mktemp -d /tmp/fpolicy-bench.XXXXXX)
trap 'pkill -f "$work" 2>/dev/null || true; rm -rf "$work"' EXIT
port=19898
admin=19899

start() { # start DATA_DIR [extra serve args...]
  local dir=$1; shift
  "$bin" serve --data-dir "$dir" --listen 127.0.0.1:$port --admin-listen 127.0.0.1:$admin "$@" 2>"$dir.log" &
  server=$!
  for _ in $(seq 100); do curl -sf 127.0.0.1:$admin/readyz >/dev/null && return; sleep 0.1; done
  echo "server did not start"; cat "$dir.log"; exit 1
}
stop() { kill -TERM "$server"; wait "$server"; }
metric() { curl -s 127.0.0.1:$admin/metrics | awk -v m="$1" '$1==m {print $2}'; }
field() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$1" "$2"; }

bench_async() {
  start "$work/async" --write-complete-delay 0
  "$sim" run --server 127.0.0.1:$port --nodes 4 --duration "${secs}s" --json > "$work/async.json"
  stop
  local sent lines
  sent=$(field "$work/async.json" 'r["sent"]')
  lines=$(cat "$work"/async/events/*.jsonl | wc -l)
  echo "async: sent $sent in ${secs}s = $(field "$work/async.json" 'round(r["rate_per_sec"])')/s, JSONL lines $lines (exact: $([ "$sent" = "$lines" ] && echo yes || echo NO))"
}

# Asynchronous again, with user identity and noise filters on: a table of
# 300,000 users (fixed entries, the same table a directory sync builds;
# fpolicy-sim's SMB SID and NFS UIDs among them) and every filter kind.
bench_identity() {
  scripts/identity-config.py "$work/identity.toml" $((300000 - 8))
  start "$work/identity" --config "$work/identity.toml" --write-complete-delay 0
  local users; users=$(metric fpolicy_identity_users)
  "$sim" run --server 127.0.0.1:$port --nodes 4 --duration "${secs}s" --json > "$work/identity.json"
  local resolved filtered hwm
  resolved=$(metric 'fpolicy_identity_events_total{result="resolved"}')
  filtered=$(curl -s 127.0.0.1:$admin/metrics | awk '/^fpolicy_events_filtered_total/ {s += $2} END {print s + 0}')
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$server/status)
  stop
  local sent lines
  sent=$(field "$work/identity.json" 'r["sent"]')
  lines=$(cat "$work"/identity/events/*.jsonl | wc -l)
  echo "async with identity ($users users) and filters: sent $sent in ${secs}s = $(field "$work/identity.json" 'round(r["rate_per_sec"])')/s, named $resolved, filtered $filtered, JSONL lines $lines (exact: $([ "$sent" = "$((lines + filtered))" ] && echo yes || echo NO)), peak RSS $((hwm / 1024)) MiB"
}

bench_sync() {
  printf '[server]\ndefault_engine = "synchronous"\n' > "$work/sync.toml"
  start "$work/sync" --config "$work/sync.toml" --write-complete-delay 0
  "$sim" run --server 127.0.0.1:$port --nodes 4 --mode sync --outstanding 256 --duration "${sync_secs}s" --json > "$work/sync.json"
  echo "sync, 4 nodes x 256 outstanding: $(field "$work/sync.json" 'round(r["rate_per_sec"])')/s answered $(field "$work/sync.json" 'r["answered"]'), p50 $(field "$work/sync.json" 'r["latency"]["p50_us"]') us, p99 $(field "$work/sync.json" 'r["latency"]["p99_us"]') us"
  "$sim" run --server 127.0.0.1:$port --nodes 4 --mode sync --outstanding 256 --rate 10000 --duration "${sync_secs}s" --json > "$work/sync10k.json"
  echo "sync at 10,000/s: $(field "$work/sync10k.json" 'round(r["rate_per_sec"])')/s, p50 $(field "$work/sync10k.json" 'r["latency"]["p50_us"]') us, p99 $(field "$work/sync10k.json" 'r["latency"]["p99_us"]') us, max $(field "$work/sync10k.json" 'r["latency"]["max_us"]') us"
  stop
}

bench_rss() {
  start "$work/rss" --write-complete-delay 5
  "$sim" run --server 127.0.0.1:$port --nodes 200 --rate 20 --duration "$((secs + 10))s" --session-prefix idle --json > "$work/idle.json" &
  local idle=$!
  sleep 3
  "$sim" run --server 127.0.0.1:$port --nodes 4 --rate 50000 --duration "${secs}s" --json > "$work/rss.json"
  local hwm
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$server/status)
  wait $idle
  stop
  echo "rss: 200 near-idle sessions + $(field "$work/rss.json" 'round(r["rate_per_sec"])')/s for ${secs}s with coalescing on: peak RSS $((hwm / 1024)) MiB"
}

bench_reopen() {
  target/release/examples/fill-spool "$work/reopen" 1000000
  local t0 t1 t2
  t0=$(date +%s.%N)
  start "$work/reopen" --write-complete-delay 0
  t1=$(date +%s.%N)
  until [ "$(metric 'fpolicy_sink_delivered_total{sink="jsonl"}')" -gt 0 ] 2>/dev/null; do sleep 0.01; done
  t2=$(date +%s.%N)
  until [ "$(metric 'fpolicy_sink_lag_events{sink="jsonl"}')" = 0 ]; do sleep 0.1; done
  local t3; t3=$(date +%s.%N)
  stop
  python3 -c "import sys; t0,t1,t2,t3=map(float,sys.argv[1:]); print(f'reopen 1,000,000 events: ready in {t1-t0:.2f} s, first delivery after {t2-t0:.2f} s, all delivered after {t3-t0:.2f} s')" "$t0" "$t1" "$t2" "$t3"
}

case $which in
  async) bench_async ;; identity) bench_identity ;; sync) bench_sync ;; rss) bench_rss ;; reopen) bench_reopen ;;
  all) bench_async; bench_identity; bench_sync; bench_rss; bench_reopen ;;
  *) echo "usage: $0 [async|sync|rss|reopen|all]"; exit 2 ;;
esac
