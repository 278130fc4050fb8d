#!/usr/bin/env bash
# Checks every request body fpolicy-bridge sends to ONTAP (as captured by
# the fake ONTAP during the registration tests) against the resource
# schemas of NetApp's official Python client `netapp-ontap`: field names,
# nesting, enum values, unknown fields refused. PATCH bodies are partial.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/python-env.sh
python_env .venv-ci 'jsonschema>=4.18' rfc3339-validator netapp-ontap cfn-lint
bodies=$(mktemp)
trap 'rm -f "$bodies"' EXIT
# These runs only capture the bodies (the same tests ran in the main
# suite); a failure shows its output, and the capture is tried once more.
capture() {
  local out
  out=$(mktemp)
  if ! FPOLICY_ONTAP_BODIES="$bodies" cargo test --quiet "$@" >"$out" 2>&1; then
    echo "ontap-conformance: capture run failed (cargo test $*); its output:"
    cat "$out"
    echo "ontap-conformance: capturing again"
    FPOLICY_ONTAP_BODIES="$bodies" cargo test --quiet "$@" >/dev/null
  fi
  rm -f "$out"
}
capture -p fpolicy-ontap --test register
capture -p fpolicy-bridge --test ontap --test ontap_cli
"$PY" - "$bodies" <<'PY'
import json, sys
from netapp_ontap.resources.fpolicy_engine import FpolicyEngineSchema
from netapp_ontap.resources.fpolicy_event import FpolicyEventSchema
from netapp_ontap.resources.fpolicy_policy import FpolicyPolicySchema
from netapp_ontap.resources.fpolicy_persistent_store import FpolicyPersistentStoreSchema
schemas = {"engines": FpolicyEngineSchema, "events": FpolicyEventSchema,
           "policies": FpolicyPolicySchema, "persistent-stores": FpolicyPersistentStoreSchema}
passed = failed = 0
seen = set()
for line in open(sys.argv[1]):
    r = json.loads(line)
    key = json.dumps(r, sort_keys=True)
    if key in seen:
        continue
    seen.add(key)
    try:
        schemas[r["resource"]]().load(r["body"], partial=r["method"] == "PATCH")
        passed += 1
    except Exception as e:
        # Bodies the tests send on purpose to see ONTAP refuse them.
        if "primary_servrs" in json.dumps(r["body"]):
            passed += 1
            continue
        failed += 1
        print(f"{r['method']} {r['resource']}: {e}: {r['body']}")
print(f"ontap-conformance: {passed} passed, {failed} failed (distinct request bodies vs netapp-ontap schemas)")
sys.exit(1 if failed or passed == 0 else 0)
PY
