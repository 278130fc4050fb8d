"""Deploys the messaging part of the main template (queues, bus, generated
configuration) and the generated use-case rules into moto's CloudFormation,
reads the resources back, checks the generated configuration with the
bridge itself and sends events through the rules.

usage: cfn-moto-deploy.py ENDPOINT MESSAGING_JSON RULES_JSON BRIDGE_BINARY"""
import json
import subprocess
import sys
import tempfile
import time
import tomllib

import boto3

endpoint, messaging, rules, bridge = sys.argv[1:5]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
cfn = boto3.client("cloudformation", **kw)
sqs = boto3.client("sqs", **kw)
events = boto3.client("events", **kw)
ssm = boto3.client("ssm", **kw)
efs = boto3.client("efs", **kw)


def deploy(name, body, params):
    cfn.create_stack(StackName=name, TemplateBody=body, Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
    for _ in range(100):
        s = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if s["StackStatus"].endswith("_COMPLETE") or s["StackStatus"].endswith("_FAILED"):
            break
        time.sleep(0.2)
    if s["StackStatus"] != "CREATE_COMPLETE":
        events_ = cfn.describe_stack_events(StackName=name)["StackEvents"]
        sys.exit(f"{name}: {s['StackStatus']} {s.get('StackStatusReason', '')} {events_[:3]}")
    return {o["OutputKey"]: o["OutputValue"] for o in s.get("Outputs", [])}


def bridge_out(*args):
    r = subprocess.run([bridge, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"fpolicy-bridge {' '.join(args)}: {r.stderr}")
    return r.stdout


params = {
    "ResourcePrefix": "fpb",
    "ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/fpolicy-bridge:1",
    "DataLifCidr": "10.0.0.0/24",
    "OntapManagementEndpoint": "mgmt.fsx.example.com",
    "OntapCaBundleParameter": "/fpb/ontap-ca",
    "OntapSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ontap",
    "SvmName": "svm1",
    "TriggerMode": "HYBRID",
    "PollAccessPointAlias": "fsx-ap-abc123-s3alias",
    "EnableCostScheduling": "true",
    "BusinessHoursStart": "08:30",
    "Timezone": "Asia/Tokyo",
    "SpoolCapacityGiB": "50",
    "PersistentStoreVolume": "fpolicy_ps_vol",
}
out = deploy("fpb-messaging", open(messaging).read(), params)
queues = sqs.list_queues(QueueNamePrefix="fpb-")["QueueUrls"]
for name in ("fpb-ingest-us-east-1", "fpb-use-cases-us-east-1", "fpb-dlq-us-east-1"):
    assert any(q.endswith(name) for q in queues), (name, queues)
for q in (next(q for q in queues if "ingest" in q), out["UseCaseQueueUrl"]):
    attrs = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith("fpb-dlq-us-east-1") and int(redrive["maxReceiveCount"]) == 5, redrive
    assert attrs.get("SqsManagedSseEnabled") in ("true", True), attrs
# (moto creates AWS::SQS::QueuePolicy without applying it, so the queue
# policy is checked by cfn-lint only.)
bus = events.describe_event_bus(Name="fpb-events")
assert bus["Name"] == "fpb-events", bus

# The generated configuration: what the task and the host run with.
name = out["ConfigParameterName"]
assert name == "/fpb/fpb-messaging/config", name
param = ssm.get_parameter(Name=name)["Parameter"]
text = param["Value"]
cfg = tomllib.loads(text)
assert cfg["trigger"]["mode"] == "hybrid", cfg["trigger"]
poll = cfg["poll"][0]
assert poll["bucket"] == "fsx-ap-abc123-s3alias", poll
assert poll["business_hours"] == {"days": "Mon-Fri", "start": "08:30", "end": "18:00", "timezone": "Asia/Tokyo"}, poll
assert cfg["spool"]["capacity_bytes"] == 50 * 2**30, cfg["spool"]
assert cfg["ontap"]["register_on_start"] is True, cfg["ontap"]
assert cfg["ontap"]["persistent_store_volume"] == "fpolicy_ps_vol" and cfg["ontap"]["persistent_store"] == "fpolicy_bridge_ps", cfg["ontap"]
assert cfg["ontap"]["cluster_url"] == "https://mgmt.fsx.example.com" and cfg["ontap"]["svm"] == "svm1", cfg["ontap"]
sinks = {s["name"]: s for s in cfg["sink"]}
assert sinks["ingest"]["queue_url"].endswith("/fpb-ingest-us-east-1"), sinks
assert sinks["bus"]["event_bus_name"] == "fpb-events", sinks
with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
    f.write(text)
    f.flush()
    bridge_out("config", "check", f.name)
    # Same routes as the rules on the bus and as examples/use-cases.toml.
    assert bridge_out("routes", "cloudformation", "--config", f.name) == open(rules).read(), "rules differ from the generated configuration's routes"
    assert bridge_out("routes", "eventbridge-patterns", "--config", f.name) == bridge_out(
        "routes", "eventbridge-patterns", "--config", "examples/use-cases.toml"
    ), "the template's routes differ from examples/use-cases.toml"
# SpoolStorage = efs (the default on Fargate): every task's spool on an
# encrypted EFS file system, reached through an access point as the image's
# user, and the configuration points spool.shared_root at its mount.
assert cfg["spool"]["shared_root"] == "/mnt/fpolicy-spool" and cfg["spool"]["adopt_orphans"] is True, cfg["spool"]
fs = efs.describe_file_systems(FileSystemId=out["SpoolFileSystemId"])["FileSystems"][0]
assert fs["Encrypted"] and fs["ThroughputMode"] == "elastic", fs
# (moto's Ref of an access point is not its id: look it up by file system.)
ap = efs.describe_access_points(FileSystemId=fs["FileSystemId"])["AccessPoints"][0]
assert ap["PosixUser"]["Uid"] == 65532 and ap["RootDirectory"]["Path"] == "/fpolicy-spool", ap
print(f"deploy-checks: moto CloudFormation: generated configuration ({len(text)} bytes, {len(cfg['route'])} routes, trigger hybrid with business hours) passes config check")

# The other trigger modes, each in its own stack (another prefix).
for prefix, mode, cost, want in (("fpe", "EVENT_DRIVEN", "false", None), ("fpp", "POLLING", "false", {"interval": "1h"})):
    variant = dict(params, ResourcePrefix=prefix, TriggerMode=mode, EnableCostScheduling=cost, PersistentStoreVolume="", SpoolStorage="task")
    o = deploy(f"{prefix}-messaging", open(messaging).read(), variant)
    t = ssm.get_parameter(Name=o["ConfigParameterName"])["Parameter"]["Value"]
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
        f.write(t)
        f.flush()
        bridge_out("config", "check", f.name)
    c = tomllib.loads(t)
    assert c["trigger"]["mode"] == mode.lower(), c["trigger"]
    assert "shared_root" not in c["spool"] and "SpoolFileSystemId" not in o, (c["spool"], o)
    assert "persistent_store" not in c["ontap"], c["ontap"]
    assert c["ontap"]["register_on_start"] is (mode != "POLLING"), c["ontap"]
    if want is None:
        assert "poll" not in c, c.get("poll")
    else:
        assert c["poll"][0]["interval"] == want["interval"] and "business_hours" not in c["poll"][0], c["poll"]
print("deploy-checks: moto CloudFormation: EVENT_DRIVEN (no poll) and POLLING (hourly) configurations as expected; SpoolStorage=efs makes an encrypted EFS file system and access point, task none")

# The rules, on the bus, to the use-case queue.
deploy("fpb-rules", open(rules).read(), {"EventBusName": "fpb-events", "TargetArn": out["UseCaseQueueArn"], "RuleNamePrefix": "fpb"})
listed = events.list_rules(EventBusName="fpb-events")["Rules"]
expected = len(json.load(open(rules))["Resources"])
assert len(listed) == expected, (len(listed), expected)
assert all(r["Name"].startswith("fpb-") for r in listed), [r["Name"] for r in listed]
targets = events.list_targets_by_rule(Rule=listed[0]["Name"], EventBusName="fpb-events")["Targets"]
assert targets[0]["Arn"] == out["UseCaseQueueArn"], targets


def put(path, routes):
    detail = {"file_path": path, "metadata": {"routes": routes}}
    r = events.put_events(Entries=[{"EventBusName": "fpb-events", "Source": "fsxn.fpolicy", "DetailType": "FPolicy File Operation", "Detail": json.dumps(detail)}])
    assert r["FailedEntryCount"] == 0, r


put("/legal/a.pdf", ["legal-compliance"])
put("/tmp/x.bin", [])
got = []
for _ in range(20):
    msgs = sqs.receive_message(QueueUrl=out["UseCaseQueueUrl"], MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    got += [json.loads(m["Body"])["detail"]["file_path"] for m in msgs]
    if got:
        break
assert got == ["/legal/a.pdf"], got
print(f"deploy-checks: moto CloudFormation: queues (SSE, redrive 5 to the DLQ), bus and {len(listed)} use-case rules created and read back; a use-case event reached the use-case queue, another did not")
