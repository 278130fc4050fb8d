"""Writes the messaging part of deploy/cloudformation/fpolicy-bridge.yaml
(ingest queue, DLQ, event bus) as a JSON template, for the moto deploy
check. Uses cfn-lint's loader, which understands the short-form tags."""
import json
import sys

from cfnlint.decode import decode

template, matches = decode(sys.argv[1])
if matches:
    sys.exit(f"cannot load {sys.argv[1]}: {matches}")
keep = ["DeadLetterQueue", "IngestQueue", "EventBus"]
part = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Parameters": {"ResourcePrefix": template["Parameters"]["ResourcePrefix"]},
    "Resources": {k: template["Resources"][k] for k in keep},
    "Outputs": {
        "IngestQueueArn": {"Value": {"Fn::GetAtt": ["IngestQueue", "Arn"]}},
    },
}
json.dump(part, open(sys.argv[2], "w"), indent=1)
