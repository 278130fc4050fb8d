#!/usr/bin/env bash
# NATS JetStream sink benchmark: fpolicy-sim → fpolicy-bridge → a local
# single-node JetStream server (file storage), then a three-node cluster
# with an R3 stream, everything on this machine (results in
# docs/benchmarks.md). Needs nats-server (Debian package nats-server).
#   scripts/bench-nats.sh [SECS] [RATE] [single|cluster|both]
# SECS per run (default 30); RATE the simulator's events/s (default 0: as
# fast as it can). Prints the ingest rate, the rate the stream grew at
# while ingesting, and the time to deliver the rest. DUP_WINDOW sets the
# created stream's duplicate window (default 2m, the sink's default): the
# server keeps one id per message inside it, which is most of its CPU cost
# at these rates (docs/benchmarks.md). The steady rate leaves out the first
# WARMUP seconds (default 5): connecting, creating the stream, the ramp.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
warmup=${WARMUP:-5}
rate=${2:-0}
which=${3:-both}
nats_server=${FPOLICY_NATS_SERVER:-/usr/sbin/nats-server}
cargo build --release -q -p fpolicy-bridge -p fpolicy-sim
work=$(mktemp -d /tmp/fpolicy-bench-nats.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 0.5; rm -rf "$work"' EXIT
metric() { curl -s 127.0.0.1:19899/metrics | awk -v m="$1" '$1==m {print $2}'; }

start_nats() { # start_nats N
  local n=$1 i routes=""
  for i in $(seq 0 $((n - 1))); do routes="$routes${routes:+, }nats://127.0.0.1:$((16250 + i))"; done
  for i in $(seq 0 $((n - 1))); do
    mkdir -p "$work/n$n-$i"
    {
      echo "server_name: n$i"
      echo "listen: 127.0.0.1:$((14222 + i))"
      echo "jetstream { store_dir: \"$work/n$n-$i/js\" }"
      if [ "$n" -gt 1 ]; then echo "cluster { name: bench, listen: 127.0.0.1:$((16250 + i)), routes: [$routes] }"; fi
    } > "$work/n$n-$i.conf"
    "$nats_server" -c "$work/n$n-$i.conf" 2>"$work/n$n-$i.log" &
  done
  sleep 3
}

run() { # run NAME NODES REPLICAS
  local name=$1 n=$2 replicas=$3 servers="" i
  for i in $(seq 0 $((n - 1))); do servers="$servers${servers:+, }\"nats://127.0.0.1:$((14222 + i))\""; done
  cat > "$work/$name.toml" <<TOML
[sinks.jsonl]
enabled = false
[[sink]]
name = "stream"
type = "nats"
servers = [$servers]
create_stream = true
replicas = $replicas
duplicate_window = "${DUP_WINDOW:-2m}"
TOML
  target/release/fpolicy-bridge serve --config "$work/$name.toml" --data-dir "$work/$name" --listen 127.0.0.1:19898 \
    --admin-listen 127.0.0.1:19899 --write-complete-delay 0 2>"$work/$name.log" &
  local server=$!
  for _ in $(seq 300); do curl -sf 127.0.0.1:19899/readyz >/dev/null && break; sleep 0.1; done
  local t0 t1 t2 d1 sent
  t0=$(date +%s.%N)
  local pace=()
  [ "$rate" -gt 0 ] && pace=(--rate "$rate")
  # The steady rate: acknowledged from $WARMUP s after the start to the
  # end of ingest (no connection set-up and ramp, and the events still in
  # flight at the end do not count against it).
  (sleep "$warmup"; echo "$(date +%s.%N) $(metric 'fpolicy_sink_delivered_total{sink="stream"}')" > "$work/warm") &
  local sampler=$!
  local stat0
  stat0=$(head -1 /proc/stat)
  target/release/fpolicy-sim run --server 127.0.0.1:19898 --nodes 4 "${pace[@]}" --duration "${secs}s" --json > "$work/$name.json"
  t1=$(date +%s.%N)
  d1=$(metric 'fpolicy_sink_delivered_total{sink="stream"}')
  wait $sampler
  # The share of the two cores the hypervisor gave to someone else
  # (steal): what makes runs on these machines differ by a fifth.
  local steal
  steal=$(printf '%s\n%s\n' "$stat0" "$(head -1 /proc/stat)" | awk '{for (i = 2; i <= 11; i++) v[NR, i] = $i}
    END {t = 0; for (i = 2; i <= 11; i++) t += v[2, i] - v[1, i]; printf "%.0f", (v[2, 9] - v[1, 9]) / t * 100}')
  local tw dw
  read -r tw dw < "$work/warm"
  until [ "$(metric 'fpolicy_sink_lag_events{sink="stream"}')" = 0 ]; do sleep 0.2; done
  t2=$(date +%s.%N)
  sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sent"])' "$work/$name.json")
  kill -TERM $server; wait $server || true
  python3 -c 'import sys
name, steal, sent, d1, dw, t0, t1, t2, tw = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), *map(float, sys.argv[6:])
print(f"{name}: ingested {sent} in {t1-t0:.1f} s = {sent/(t1-t0):,.0f}/s; published and acknowledged {d1/(t1-t0):,.0f}/s while ingesting ({(d1-dw)/(t1-tw):,.0f}/s steady, after the first {tw-t0:.0f} s); the rest ({sent-d1:,.0f}) {t2-t1:.1f} s after; overall {sent/(t2-t0):,.0f}/s; {steal}% of the CPU stolen while ingesting")' \
    "$name" "$steal" "$sent" "${d1:-0}" "${dw:-0}" "$t0" "$t1" "$t2" "$tw"
}

if [ "$which" != cluster ]; then
  start_nats 1
  run "single node (file storage)" 1 1
  jobs -p | xargs -r kill 2>/dev/null || true; sleep 1
fi
if [ "$which" != single ]; then
  start_nats 3
  run "three-node cluster, R3" 3 3
fi
