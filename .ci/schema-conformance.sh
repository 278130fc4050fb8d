#!/usr/bin/env bash
# Validates emitted events with a JSON Schema validator (Python jsonschema):
#  1. every event against the project's schema, docs/event.schema.json;
#  2. events of the predecessor's four operations (create, write, delete,
#     rename) against its schema, ../shared/fpolicy-reference/seed-event-schema.json,
#     when that reference is present (override with FPOLICY_SEED_SCHEMA).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/python-env.sh
python_env .venv-ci 'jsonschema>=4.18' rfc3339-validator netapp-ontap cfn-lint
events=$(mktemp)
trap 'rm -f "$events"' EXIT
cargo run --quiet -p fpolicy-event --example emit-events > "$events"
cargo run --quiet -p fpolicy-bridge --example emit-poll-events >> "$events"
seed=${FPOLICY_SEED_SCHEMA:-../shared/fpolicy-reference/seed-event-schema.json}
"$PY" - "$events" docs/event.schema.json "$seed" <<'PY'
import json, os, sys
from jsonschema import Draft7Validator, FormatChecker
events_path, own_path, seed_path = sys.argv[1:4]
events = [json.loads(l) for l in open(events_path, encoding="utf-8")]
own = Draft7Validator(json.load(open(own_path)), format_checker=FormatChecker())
def check(validator, name, evs):
    bad = 0
    for e in evs:
        errs = list(validator.iter_errors(e))
        for err in errs:
            print(f"{name}: {e['metadata']['req_type']}: {err.message}")
        bad += bool(errs)
    print(f"schema-conformance: {len(evs) - bad} passed, {bad} failed ({name}, {len(evs)} events)")
    return bad
failed = check(own, "docs/event.schema.json", events)
if os.path.exists(seed_path):
    seed = Draft7Validator(json.load(open(seed_path)), format_checker=FormatChecker())
    four = [e for e in events if e["operation_type"] in ("create", "write", "delete", "rename")]
    failed += check(seed, "predecessor's schema", four)
else:
    print(f"schema-conformance: SKIPPED the predecessor's schema: {seed_path} is absent")
sys.exit(1 if failed else 0)
PY
