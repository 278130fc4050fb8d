#!/usr/bin/env bash
# Cloud sink benchmark: fpolicy-bridge delivering to an SQS sink and an
# EventBridge sink at once, both pointed at examples/fake-aws (a local
# endpoint that accepts everything at once; moto is far too slow), while
# fpolicy-sim ingests at a fixed rate on the same machine.
#   scripts/bench-cloud.sh [RATE] [SECS]      (default 60000 events/s, 30 s)
# Prints delivered events/s per sink, the largest sink lag seen, and the
# process CPU per event with and without the cloud sinks (the difference is
# what the AWS SDK path costs).
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-60000}
secs=${2:-30}
cargo build --release -q -p fpolicy-bridge -p fpolicy-sim
cargo build --release -q -p fpolicy-bridge --example fake-aws
work=$(mktemp -d /tmp/fpolicy-bench-cloud.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
target/release/examples/fake-aws 127.0.0.1:4599 2>"$work/fake.log" &
cat > "$work/cloud.toml" <<TOML
[[sink]]
name = "queue"
type = "sqs"
queue_url = "http://127.0.0.1:4599/000000000000/bench"
endpoint_url = "http://127.0.0.1:4599"
max_in_flight = 16
[[sink]]
name = "bus"
type = "eventbridge"
event_bus_name = "bench"
endpoint_url = "http://127.0.0.1:4599"
max_in_flight = 16
TOML
: > "$work/local.toml"
# Each cloud sink alone, then both at once.
awk '/^\[\[sink\]\]/{n++} n==1' "$work/cloud.toml" > "$work/sqs.toml"
awk '/^\[\[sink\]\]/{n++} n==2' "$work/cloud.toml" > "$work/eventbridge.toml"
metric() { curl -s 127.0.0.1:19899/metrics | awk -v m="$1" '$1==m {print $2}'; }
cpu_ticks() { awk '{print $14 + $15}' /proc/"$1"/stat; }

run() { # run NAME CONFIG
  local name=$1 cfg=$2
  target/release/fpolicy-bridge serve --config "$cfg" --data-dir "$work/$name" --listen 127.0.0.1:19898 \
    --admin-listen 127.0.0.1:19899 --write-complete-delay 0 2>"$work/$name.log" &
  local server=$!
  for _ in $(seq 100); do curl -sf 127.0.0.1:19899/readyz >/dev/null && break; sleep 0.1; done
  local c0; c0=$(cpu_ticks $server)
  target/release/fpolicy-sim run --server 127.0.0.1:19898 --nodes 4 --rate "$rate" --duration "${secs}s" --json > "$work/$name.json" &
  local sim=$! max_lag=0 q0 b0 q1 b1
  sleep 5
  q0=$(metric 'fpolicy_sink_delivered_total{sink="queue"}'); b0=$(metric 'fpolicy_sink_delivered_total{sink="bus"}')
  local t0; t0=$(date +%s.%N)
  while kill -0 $sim 2>/dev/null; do
    for s in queue bus jsonl; do
      local lag; lag=$(metric "fpolicy_sink_lag_events{sink=\"$s\"}"); lag=${lag:-0}
      [ "${lag%.*}" -gt "$max_lag" ] && max_lag=${lag%.*}
    done
    sleep 1
  done
  local t1; t1=$(date +%s.%N)
  q1=$(metric 'fpolicy_sink_delivered_total{sink="queue"}'); b1=$(metric 'fpolicy_sink_delivered_total{sink="bus"}')
  until [ "$(metric 'fpolicy_sink_lag_events{sink="jsonl"}')" = 0 ] && { [ -z "$(metric 'fpolicy_sink_lag_events{sink="queue"}')" ] || [ "$(metric 'fpolicy_sink_lag_events{sink="queue"}')" = 0 ]; } \
        && { [ -z "$(metric 'fpolicy_sink_lag_events{sink="bus"}')" ] || [ "$(metric 'fpolicy_sink_lag_events{sink="bus"}')" = 0 ]; }; do sleep 0.2; done
  local c1; c1=$(cpu_ticks $server)
  local sent; sent=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['sent'])" "$work/$name.json")
  kill -TERM $server; wait $server
  python3 - "$name" "$sent" "$c0" "$c1" "$t0" "$t1" "${q0:-0}" "${q1:-0}" "${b0:-0}" "${b1:-0}" "$max_lag" "$(getconf CLK_TCK)" <<'PY'
import sys
name, sent, c0, c1, t0, t1, q0, q1, b0, b1, lag, hz = sys.argv[1:]
sent = int(sent); cpu = (int(c1) - int(c0)) / int(hz); dt = float(t1) - float(t0)
line = f"{name}: ingested {sent} at {sent / (dt + 5):.0f}/s; server CPU {cpu:.1f} s = {cpu / sent * 1e6:.1f} us/event"
if float(q1) > 0 or float(b1) > 0:
    line += f"; delivered queue {(float(q1) - float(q0)) / dt:.0f}/s, bus {(float(b1) - float(b0)) / dt:.0f}/s; max sink lag {lag} events"
print(line)
PY
}
run local "$work/local.toml"
run sqs "$work/sqs.toml"
run eventbridge "$work/eventbridge.toml"
run both "$work/cloud.toml"
tail -1 "$work/fake.log"
