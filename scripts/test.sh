#!/usr/bin/env bash
# Runs every test of the project: the Rust test suites of every crate, then
# the XSD conformance of every message the codec emits (needs xmllint).
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

cargo test --workspace --all-features
bash .ci/xsd-conformance.sh
