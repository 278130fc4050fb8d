#!/usr/bin/env bash
# Reads every output format back with the consumers people use
# (scripts/check-formats.py; docs/formats.md), over one event per ReqType
# and protocol version (fpolicy-event's emit-events example):
#  - s3: Powertools for AWS Lambda's SQSEvent, S3Event and
#    S3EventBridgeNotificationEvent data classes (keys and sizes checked
#    against the same events in the fpolicy format);
#  - ocsf: the OCSF 1.3.0 File System Activity JSON Schema (ocsf-json-schema);
#  - ecs: ECS 8.11's published field definitions (generated/ecs_flat.js of the
#    npm package @elastic/ecs 8.11.5, downloaded once into target/);
#  - cef: pycef.
# The syslog, SQS and EventBridge integration tests read what the real
# receivers got with the same script.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/python-env.sh
python_env .venv-formats 'aws-lambda-powertools>=3' pycef 'jsonschema>=4.18' 'ocsf-json-schema>=1.2'
ecs_version=8.11.5
ecs_flat=target/ecs-$ecs_version/package/generated/ecs_flat.js
if [[ ! -f $ecs_flat ]]; then
  mkdir -p "target/ecs-$ecs_version"
  curl -fsSL "https://registry.npmjs.org/@elastic/ecs/-/ecs-$ecs_version.tgz" | tar -xz -C "target/ecs-$ecs_version"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for f in fpolicy s3 s3-eventbridge ocsf ecs cef; do
  cargo run --quiet -p fpolicy-event --example emit-events -- --format "$f" > "$work/$f"
done
status=0
"$PY" scripts/check-formats.py s3-sqs "$work/s3" --events "$work/fpolicy" --unique-ids || status=1
"$PY" scripts/check-formats.py s3-eventbridge "$work/s3-eventbridge" --events "$work/fpolicy" --unique-ids || status=1
"$PY" scripts/check-formats.py ocsf "$work/ocsf" --unique-ids || status=1
"$PY" scripts/check-formats.py ecs "$work/ecs" "$ecs_flat" --unique-ids || status=1
"$PY" scripts/check-formats.py cef "$work/cef" --unique-ids || status=1
exit $status
