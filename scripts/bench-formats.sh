#!/usr/bin/env bash
# Throughput of the output formats and of the syslog sink (results and the
# machine they came from: docs/benchmarks.md#output-formats).
#   scripts/bench-formats.sh [COUNT] [all|jsonl|syslog]   (default 1,000,000 events, all)
# For each format: `serve` with [sinks.jsonl] format = F, fpolicy-sim sends
# COUNT events as fast as it can (4 nodes), and the clock stops when the
# JSON Lines sink has written the last one (its lag is 0). Syslog: the same
# events also go to a local rsyslog (Debian rsyslog, rsyslog-relp) over TCP
# or RELP, CEF, and the clock stops when that sink's lag is 0; rsyslog
# writes every message to a file on the same machine.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000000}
which=${2:-all}
cargo build --release -q -p fpolicy-bridge -p fpolicy-sim
bin=target/release/fpolicy-bridge
sim=target/release/fpolicy-sim
work=$(mktemp -d /tmp/fpolicy-bench-formats.XXXXXX)
rsyslog_pid=
trap 'pkill -f "$work" 2>/dev/null || true; [[ -z $rsyslog_pid ]] || kill "$rsyslog_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
port=19898
admin=19899
syslog_port=19514

metric() { curl -s 127.0.0.1:$admin/metrics | awk -v m="$1" '$1==m {print $2}'; }

# run NAME SINK TOML: serve with TOML, COUNT events, seconds until SINK's lag is 0.
run() {
  local name=$1 sink=$2 toml=$3
  printf '%s' "$toml" > "$work/$name.toml"
  "$bin" serve --config "$work/$name.toml" --data-dir "$work/$name" --listen 127.0.0.1:$port \
    --admin-listen 127.0.0.1:$admin --write-complete-delay 0 2>"$work/$name.log" &
  local server=$!
  for _ in $(seq 100); do curl -sf 127.0.0.1:$admin/readyz >/dev/null && break; sleep 0.1; done
  local t0 t1
  t0=$(date +%s.%N)
  "$sim" run --server 127.0.0.1:$port --nodes 4 --count "$count" --json > "$work/$name.json"
  until [[ $(metric "fpolicy_sink_lag_events{sink=\"$sink\"}") == 0 ]]; do sleep 0.05; done
  t1=$(date +%s.%N)
  local written skipped
  written=$(metric "fpolicy_sink_delivered_total{sink=\"$sink\"}")
  skipped=$(curl -s 127.0.0.1:$admin/metrics | awk -v s="sink=\"$sink\"" 'index($1, "fpolicy_sink_skipped_total{" s) {n += $2} END {print n + 0}')
  kill -TERM "$server"; wait "$server"
  python3 -c "import sys; c,t0,t1,w,s,name=sys.argv[1:]; d=float(t1)-float(t0); print(f'{name}: {int(c):,} events in {d:.1f} s = {int(c)/d:,.0f}/s (sent {int(float(w)):,}, not an object {int(float(s)):,})')" \
    "$count" "$t0" "$t1" "$written" "$skipped" "$name"
}

ap='[[access_point]]
volume = "unknown"
alias = "bench-ap-ext-s3alias"
root = "/"
'
[[ $which == syslog ]] || for f in fpolicy s3 ocsf ecs; do
  run "jsonl-$f" jsonl "[sinks.jsonl]
format = \"$f\"
$ap"
done

start_rsyslog() { # tcp|relp
  local d=$work/rsyslog-$1
  mkdir -p "$d/work"
  local input
  if [[ $1 == relp ]]; then
    input="module(load=\"imrelp\")
input(type=\"imrelp\" address=\"127.0.0.1\" port=\"$syslog_port\")"
  else
    input="module(load=\"imtcp\")
input(type=\"imtcp\" address=\"127.0.0.1\" port=\"$syslog_port\")"
  fi
  cat > "$d/rsyslog.conf" <<EOF
global(workDirectory="$d/work" maxMessageSize="64k")
$input
template(name="line" type="string" string="%msg%\n")
action(type="omfile" file="$d/messages.log" template="line")
EOF
  /usr/sbin/rsyslogd -n -f "$d/rsyslog.conf" -i "$d/pid" 2>"$d/log" &
  rsyslog_pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$syslog_port) 2>/dev/null && break; sleep 0.1; done
}

[[ $which == jsonl ]] || for t in tcp relp; do
  start_rsyslog $t
  run "syslog-$t" siem "[sinks.jsonl]
enabled = false
[[sink]]
name = \"siem\"
type = \"syslog\"
address = \"127.0.0.1:$syslog_port\"
transport = \"$t\"
format = \"cef\"
"
  kill "$rsyslog_pid"; wait "$rsyslog_pid" 2>/dev/null || true
  echo "  rsyslog wrote $(wc -l < "$work/rsyslog-$t/messages.log") lines"
  rsyslog_pid=
done
