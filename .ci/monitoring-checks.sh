#!/usr/bin/env bash
# The Prometheus alert rules: syntax (promtool check rules) and behaviour
# (promtool test rules, series and expected alerts in the .test.yml).
# promtool comes from Debian's prometheus package (scripts/test.sh installs
# it). That the rules and the Grafana dashboard query only metrics /metrics
# exposes is checked by crates/fpolicy-bridge/tests/metric_names.rs.
set -euo pipefail
cd "$(dirname "$0")/../deploy/prometheus"
promtool check rules fpolicy-bridge.rules.yml
promtool test rules fpolicy-bridge.rules.test.yml
python3 -c 'import json, sys; n = len(json.load(open(sys.argv[1]))["panels"]); assert n, "no panels"; print("grafana:", n, "panels")' ../grafana/fpolicy-bridge.json
