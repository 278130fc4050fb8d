"""Deploys the messaging part of the main template and the generated
use-case rules into moto's CloudFormation, then reads the resources back."""
import json
import sys
import time

import boto3

endpoint, messaging, rules = sys.argv[1:4]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
cfn = boto3.client("cloudformation", **kw)
sqs = boto3.client("sqs", **kw)
events = boto3.client("events", **kw)


def deploy(name, body, params):
    cfn.create_stack(StackName=name, TemplateBody=body, Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
    for _ in range(100):
        s = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if s["StackStatus"].endswith("_COMPLETE") or s["StackStatus"].endswith("_FAILED"):
            break
        time.sleep(0.2)
    if s["StackStatus"] != "CREATE_COMPLETE":
        sys.exit(f"{name}: {s['StackStatus']} {s.get('StackStatusReason', '')}")
    return {o["OutputKey"]: o["OutputValue"] for o in s.get("Outputs", [])}


out = deploy("fpb-messaging", open(messaging).read(), {"ResourcePrefix": "fpb"})
queues = sqs.list_queues(QueueNamePrefix="fpb-")["QueueUrls"]
assert any("fpb-ingest-us-east-1" in q for q in queues), queues
assert any("fpb-dlq-us-east-1" in q for q in queues), queues
ingest = next(q for q in queues if "ingest" in q)
attrs = sqs.get_queue_attributes(QueueUrl=ingest, AttributeNames=["All"])["Attributes"]
redrive = json.loads(attrs["RedrivePolicy"])
assert redrive["deadLetterTargetArn"].endswith("fpb-dlq-us-east-1") and int(redrive["maxReceiveCount"]) == 5, redrive
# moto's Ref of an EventBus yields an object repr, so use the name the
# template gives it (${ResourcePrefix}-events).
bus = events.describe_event_bus(Name="fpb-events")
assert bus["Name"] == "fpb-events", bus
deploy("fpb-rules", open(rules).read(), {"EventBusName": "fpb-events", "TargetArn": out["IngestQueueArn"]})
listed = events.list_rules(EventBusName="fpb-events")["Rules"]
expected = len(json.load(open(rules))["Resources"])
assert len(listed) == expected, (len(listed), expected)
targets = events.list_targets_by_rule(Rule=listed[0]["Name"], EventBusName="fpb-events")["Targets"]
assert targets[0]["Arn"] == out["IngestQueueArn"], targets
print(f"deploy-checks: moto CloudFormation: queue, DLQ (redrive 5), bus and {len(listed)} use-case rules created and read back")
