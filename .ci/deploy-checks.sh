#!/usr/bin/env bash
# Checks of deploy/: cfn-lint (PyPI) and cfn-stackcheck with no errors on
# every CloudFormation template, and the systemd unit through
# `systemd-analyze verify` where systemd is available (any output fails).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/python-env.sh
python_env .venv-ci 'jsonschema>=4.18' rfc3339-validator netapp-ontap cfn-lint
mapfile -t templates < <(find deploy -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' -o -name '*.template' \) | sort)
if [ "${#templates[@]}" -eq 0 ]; then
  echo "deploy-checks: no templates"
else
  "$PY" -c 'import sys; from cfnlint.runner import main; sys.argv[0] = "cfn-lint"; sys.exit(main())' "${templates[@]}"
  echo "deploy-checks: cfn-lint: ${#templates[@]} templates, no findings"
  cargo run --quiet -p cfn-stackcheck -- "${templates[@]}"
fi
if command -v systemd-analyze >/dev/null 2>&1; then
  cargo build --quiet -p fpolicy-bridge
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
