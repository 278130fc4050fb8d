"""Writes the part of deploy/cloudformation/fpolicy-bridge.yaml that moto's
CloudFormation can create (queues, queue policy, event bus, the generated
configuration parameter, the spool's EFS file system and access point) as a
JSON template, for the moto deploy check.
Uses cfn-lint's loader, which understands the short-form tags."""
import json
import sys

from cfnlint.decode import decode

template, matches = decode(sys.argv[1])
if matches:
    sys.exit(f"cannot load {sys.argv[1]}: {matches}")
keep = ["DeadLetterQueue", "IngestQueue", "UseCaseQueue", "UseCaseQueuePolicy", "EventBus", "ConfigParameter", "SpoolFileSystem", "SpoolAccessPoint"]
params = {}
for name, p in template["Parameters"].items():
    p = dict(p)
    # moto cannot resolve AWS-specific parameter types (VPC ids, SSM lookups).
    if p["Type"] not in ("String", "Number"):
        p = {"Type": "String", "Default": "unused"}
    params[name] = p
part = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Parameters": params,
    "Mappings": template["Mappings"],
    "Conditions": template["Conditions"],
    "Resources": {k: template["Resources"][k] for k in keep},
    "Outputs": {
        "IngestQueueArn": {"Value": {"Fn::GetAtt": ["IngestQueue", "Arn"]}},
        "UseCaseQueueArn": {"Value": {"Fn::GetAtt": ["UseCaseQueue", "Arn"]}},
        "UseCaseQueueUrl": {"Value": {"Ref": "UseCaseQueue"}},
        "ConfigParameterName": {"Value": {"Ref": "ConfigParameter"}},
        "SpoolFileSystemId": {"Condition": "UsesEfsSpool", "Value": {"Ref": "SpoolFileSystem"}},
    },
}
json.dump(part, open(sys.argv[2], "w"), indent=1)
