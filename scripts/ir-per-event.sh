#!/usr/bin/env bash
# Instructions per event of `fpolicy-bridge serve` under callgrind: a
# measure of the ingest path that does not move with the machine's load
# (the 2-core benchmark machines vary by ±20 % from hour to hour).
#   scripts/ir-per-event.sh [BIN]
#   IR_SINK=nats scripts/ir-per-event.sh [BIN]
# Runs the server under valgrind twice (20,000 and 120,000 asynchronous
# SCREEN_REQs from 4 fpolicy-sim nodes, identity and filters on with a
# 1,000-user table, JSON Lines on) and prints the difference divided by
# 100,000: start-up and shutdown cancel out. Needs valgrind. With
# IR_SINK=nats the sink is a NATS stream on a local nats-server (started
# here, outside valgrind) instead of JSON Lines, so the count is the
# ingest path plus the NATS sink's publishing and acknowledgements.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p fpolicy-bridge -p fpolicy-sim
bin=${1:-target/release/fpolicy-bridge}
work=$(mktemp -d /tmp/fpolicy-ir.XXXXXX)
trap 'pkill -f "$work" 2>/dev/null || true; rm -rf "$work"' EXIT
scripts/identity-config.py "$work/config.toml" 1000
sink=jsonl
if [ "${IR_SINK:-jsonl}" = nats ]; then
  sink=stream
  printf 'listen: 127.0.0.1:14299\njetstream { store_dir: "%s/js" }\n' "$work" > "$work/nats.conf"
  "${FPOLICY_NATS_SERVER:-/usr/sbin/nats-server}" -c "$work/nats.conf" 2>"$work/nats.log" &
  cat >> "$work/config.toml" <<'TOML'
[sinks.jsonl]
enabled = false
[[sink]]
name = "stream"
type = "nats"
servers = ["nats://127.0.0.1:14299"]
create_stream = true
TOML
fi
lag() { curl -s 127.0.0.1:19899/metrics | awk -v m="fpolicy_sink_lag_events{sink=\"$sink\"}" '$1==m {print $2}'; }
run() { # run COUNT -> total instructions
  local dir="$work/run$1"
  mkdir -p "$dir"
  valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" "$bin" serve --config "$work/config.toml" \
    --data-dir "$dir/data" --listen 127.0.0.1:19898 --admin-listen 127.0.0.1:19899 \
    --write-complete-delay 0 2>"$dir/log" &
  local server=$!
  for _ in $(seq 600); do curl -sf 127.0.0.1:19899/readyz >/dev/null && break; sleep 0.1; done
  target/release/fpolicy-sim run --server 127.0.0.1:19898 --nodes 4 --count "$1" --json >"$dir/sim.json"
  until [ "$(lag)" = 0 ]; do sleep 0.5; done
  kill -TERM "$server"; wait "$server" || true
  awk '/^summary/ {s += $2} END {printf "%.0f\n", s}' "$dir"/cg.out*
}
small=$(run 20000)
large=$(run 120000)
echo "instructions per event: $(( (large - small) / 100000 ))"
