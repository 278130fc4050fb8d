#!/usr/bin/env bash
# Runs every test of the project: the Rust test suites of every crate, the
# XSD conformance of every message the codec emits (needs xmllint), and the
# JSON Schema conformance of emitted events (creates .venv-ci with Python's
# jsonschema on first use).
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v xmllint >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing xmllint (Debian package libxml2-utils)"
    apt-get update -qq && apt-get install -y -qq libxml2-utils >/dev/null
  else
    echo "test.sh: xmllint is missing: install Debian's libxml2-utils" >&2
    exit 1
  fi
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --all-features 2>&1 | tee "$log"
bash .ci/xsd-conformance.sh 2>&1 | tee -a "$log"
bash .ci/schema-conformance.sh 2>&1 | tee -a "$log"

# One closing line for the whole run: every suite's counts added up.
python3 - "$log" <<'PY'
import re, sys
passed = failed = 0
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    m = re.search(r"test result: \w+\. (\d+) passed; (\d+) failed", line) or \
        re.search(r"^(?:xsd|schema)-conformance: (\d+) passed, (\d+) failed", line)
    if m:
        passed += int(m.group(1)); failed += int(m.group(2))
print(f"tests: {passed} passed, {failed} failed")
sys.exit(1 if failed or passed == 0 else 0)
PY
