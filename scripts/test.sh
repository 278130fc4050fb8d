#!/usr/bin/env bash
# Runs every test of the project: the Rust test suites of every crate, the
# XSD conformance of every message the codec emits (needs xmllint), and the
# JSON Schema conformance of emitted events (creates .venv-ci with Python's
# jsonschema on first use), the ONTAP request bodies against NetApp's
# netapp-ontap schemas (same venv). Starts moto server (AWS SQS/EventBridge
# emulator, in .venv-moto, installed on first use) on 127.0.0.1 for the
# cloud sink, polling and Lambda tests: the `aws-integration` feature
# (on with --all-features), which plain `cargo test` leaves out (the cloud
# sink faults against a local fake endpoint run without it). Installs
# OpenLDAP's slapd for the identity tests (`ldap-integration`, likewise),
# rsyslog for the syslog sink (`syslog-integration`), and the Python
# consumers of the output formats (.venv-formats, .ci/format-conformance.sh).
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use: xmllint (XSD conformance) and OpenLDAP's
# slapd (the identity tests start their own instances on loopback ports;
# the package's own service is kept from starting by policy-rc.d).
need_package() { # <file that must exist> <Debian package>
  [[ -e $1 ]] && return 0
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing $2 (Debian package)"
    [[ -n ${APT_UPDATED:-} ]] || { apt-get update -qq; APT_UPDATED=1; }
    local added_policy=
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
      added_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
    [[ -z $added_policy ]] || rm -f /usr/sbin/policy-rc.d
  else
    echo "test.sh: $1 is missing: install Debian's $2" >&2
    exit 1
  fi
}
need_package /usr/bin/xmllint libxml2-utils
need_package /usr/sbin/slapd slapd
need_package /usr/sbin/nats-server nats-server
need_package /usr/bin/promtool prometheus
need_package /usr/bin/tmux tmux
# rsyslog for the syslog sink tests (`syslog-integration`): TCP, TLS (the
# gtls driver) and RELP receivers of the tests' own.
need_package /usr/sbin/rsyslogd rsyslog
rsyslog_modules=$(dirname "$(find /usr/lib -path '*/rsyslog/imtcp.so' -print -quit)")
need_package "$rsyslog_modules/imrelp.so" rsyslog-relp
need_package "$rsyslog_modules/lmnsd_gtls.so" rsyslog-gnutls

source .ci/python-env.sh
# The consumers that read the output formats back (scripts/check-formats.py):
# the integration tests run them on what SQS, EventBridge and rsyslog got.
echo "test.sh: format consumers (.venv-formats; installed on first use)"
python_env .venv-formats 'aws-lambda-powertools>=3' pycef 'jsonschema>=4.18' 'ocsf-json-schema>=1.2'
export FPOLICY_FORMATS_PY="$PY"
echo "test.sh: moto server environment (.venv-moto; installed on first use)"
python_env .venv-moto 'moto[server]'
MOTO_PY=$PY
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p target
"$MOTO_PY" -m moto.server -H 127.0.0.1 -p "$port" >target/moto.log 2>&1 &
moto_pid=$!
log="$(mktemp)"
trap 'kill "$moto_pid" 2>/dev/null; rm -f "$log"' EXIT
python3 - "$port" <<'PY'
import sys, time, urllib.request
for _ in range(200):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1)
        sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit("test.sh: moto server did not start; see target/moto.log")
PY
echo "test.sh: moto server on 127.0.0.1:$port"
export FPOLICY_MOTO_ENDPOINT="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true

cargo test --workspace --all-features 2>&1 | tee "$log"
bash .ci/xsd-conformance.sh 2>&1 | tee -a "$log"
bash .ci/schema-conformance.sh 2>&1 | tee -a "$log"
bash .ci/ontap-conformance.sh 2>&1 | tee -a "$log"
bash .ci/format-conformance.sh 2>&1 | tee -a "$log"
# Prometheus rules (promtool), the Grafana dashboard, every relative link
# in both languages and the Japanese pages' sync notes.
bash .ci/monitoring-checks.sh 2>&1 | tee -a "$log"
python3 .ci/link-check.py 2>&1 | tee -a "$log"
# deploy/: cfn-lint, cfn-stackcheck, moto CloudFormation, Dockerfile, systemd.
bash .ci/deploy-checks.sh 2>&1 | tee -a "$log"

# One closing line for the whole run: every suite's counts added up.
python3 - "$log" <<'PY'
import re, sys
passed = failed = 0
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    m = re.search(r"test result: \w+\. (\d+) passed; (\d+) failed", line) or \
        re.search(r"^(?:xsd|schema|ontap|format)-conformance: (\d+) passed, (\d+) failed", line)
    if m:
        passed += int(m.group(1)); failed += int(m.group(2))
print(f"tests: {passed} passed, {failed} failed")
sys.exit(1 if failed or passed == 0 else 0)
PY
