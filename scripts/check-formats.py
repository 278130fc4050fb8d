#!/usr/bin/env python3
"""Reads fpolicy-bridge's output formats back with the consumers people use
(docs/formats.md), one JSON document or syslog line per input line:

  check-formats.py s3-sqs FILE           SQS message bodies: Powertools' SQSEvent
                                         and S3Event data classes
  check-formats.py s3-eventbridge FILE   EventBridge events ("Object Created" /
                                         "Object Deleted"): Powertools'
                                         S3EventBridgeNotificationEvent
  check-formats.py ocsf FILE             OCSF 1.3.0 File System Activity: the JSON
                                         Schema from the ocsf-json-schema package
  check-formats.py ecs FILE ECS_FLAT_JS  ECS: every field against ECS's published
                                         definitions (generated/ecs_flat.js of the
                                         npm package @elastic/ecs), allowed values
                                         of the categorization fields
  check-formats.py cef FILE              syslog lines HOSTNAME|APP|MSGID|MSG (what the
                                         tests' rsyslog writes) or bare CEF lines:
                                         pycef

Prints `format-conformance: N passed, M failed (what)` and exits non-zero on
any failure. Options: --expect N (that many records), --unique-ids (every
event id once), --events FILE (the same events in the fpolicy format: each
S3 record's decoded key and size must be its event's; access points rooted
at /).
"""

import argparse
import json
import re
import sys
from urllib.parse import unquote_plus


def fail(problems, where, message):
    problems.append(f"{where}: {message}")


def expected_key(event, removed):
    """The decoded key of an event's object (access points rooted at /)."""
    path = event.get("previous_path") if removed and event["operation_type"] == "rename" else event["file_path"]
    return path[1:]


def check_s3_sqs(lines, problems, events):
    from aws_lambda_powertools.utilities.data_classes import S3Event, SQSEvent

    ids = []
    for n, body in enumerate(lines, 1):
        sqs = SQSEvent({"Records": [{"messageId": str(n), "body": body, "eventSource": "aws:sqs"}]})
        for record in sqs.records:
            s3 = S3Event(json.loads(record.body))
            for k, r in enumerate(s3.records):
                key = unquote_plus(r.s3.get_object.key)
                if k == 0 and key != s3.object_key:
                    fail(problems, n, f"S3Event.object_key {s3.object_key!r} is not {key!r}")
                if r.event_source != "aws:s3" or r.event_name not in ("ObjectCreated:Put", "ObjectRemoved:Delete"):
                    fail(problems, n, f"event {r.event_source} {r.event_name}")
                if not r.s3.bucket.name or not r.s3.bucket.arn:
                    fail(problems, n, "no bucket")
                event_id = r.response_elements.get("x-amz-request-id")
                created = r.event_name == "ObjectCreated:Put"
                event = events.get(event_id)
                if events and event is None:
                    fail(problems, n, f"no event {event_id}")
                elif event is not None:
                    want = expected_key(event, not created)
                    if key != want:
                        fail(problems, n, f"key {key!r}, expected {want!r}")
                    if created and r.s3.get_object.size != event["file_size"]:
                        fail(problems, n, f"size {r.s3.get_object.size}")
                ids.append((event_id, r.event_name, key))
    return ids


def check_s3_eventbridge(lines, problems, events):
    from aws_lambda_powertools.utilities.data_classes import S3EventBridgeNotificationEvent

    ids = []
    for n, line in enumerate(lines, 1):
        e = S3EventBridgeNotificationEvent(json.loads(line))
        d = e.detail
        created = e.detail_type == "Object Created"
        if e.detail_type not in ("Object Created", "Object Deleted"):
            fail(problems, n, f"detail-type {e.detail_type}")
        if not d.bucket.name:
            fail(problems, n, "no bucket")
        if created:
            if d.reason != "PutObject" or d.object.size is None or not d.object.etag:
                fail(problems, n, "creation without PutObject, size or etag")
        elif d.reason != "DeleteObject" or d.deletion_type != "Permanently Deleted":
            fail(problems, n, "deletion without DeleteObject / Permanently Deleted")
        event = events.get(d.request_id)
        if events and event is None:
            fail(problems, n, f"no event {d.request_id}")
        elif event is not None:
            want = expected_key(event, not created)
            if d.object.key != want:
                fail(problems, n, f"key {d.object.key!r}, expected {want!r}")
            if created and d.object.size != event["file_size"]:
                fail(problems, n, f"size {d.object.size}")
        ids.append((d.request_id, e.detail_type, d.object.key))
    return ids


def check_ocsf(lines, problems):
    from jsonschema import Draft202012Validator
    from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

    schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(version="1.3.0"))
    validator = Draft202012Validator(schema.get_class_schema(class_name="file_activity", profiles=[]))
    ids = []
    for n, line in enumerate(lines, 1):
        e = json.loads(line)
        for err in validator.iter_errors(e):
            fail(problems, n, f"{'/'.join(map(str, err.path))}: {err.message}")
        if e.get("class_uid") != 1001 or e.get("type_uid") != 100100 + e.get("activity_id", -1):
            fail(problems, n, "class_uid / type_uid")
        ids.append(e.get("metadata", {}).get("uid"))
    return ids


def ecs_definitions(path):
    """Field name -> (type, allowed values) from ecs_flat.js: a JavaScript
    object literal with one `'name': {` per field at four spaces."""
    text = open(path, encoding="utf-8").read()
    fields = {}
    starts = [(m.start(), m.group(1)) for m in re.finditer(r"^    '([^']+)': \{$", text, re.M)]
    for k, (start, name) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else len(text)
        block = text[start:end]
        ftype = re.search(r"^        type: '([^']+)',", block, re.M)
        allowed = re.findall(r"^                name: '([^']+)',", block, re.M) if "allowed_values" in block else []
        expected = {}
        for m in re.finditer(r"expected_event_types: \[([^\]]*)\],\s*name: '([^']+)'", block):
            expected[m.group(2)] = re.findall(r"'([^']+)'", m.group(1))
        fields[name] = (ftype.group(1) if ftype else None, allowed, expected)
    return fields


def flatten(obj, prefix=""):
    for k, v in obj.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from flatten(v, name + ".")
        else:
            yield name, v


TYPE_CHECKS = {
    "keyword": lambda v: isinstance(v, str),
    "constant_keyword": lambda v: isinstance(v, str),
    "wildcard": lambda v: isinstance(v, str),
    "match_only_text": lambda v: isinstance(v, str),
    "date": lambda v: isinstance(v, str) and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", v),
    "ip": lambda v: isinstance(v, str) and re.match(r"^[0-9a-fA-F:.]+$", v),
    "long": lambda v: isinstance(v, int),
}


def check_ecs(lines, problems, flat_js):
    fields = ecs_definitions(flat_js)
    if len(fields) < 500 or "file.path" not in fields:
        fail(problems, flat_js, f"does not look like ECS's field definitions ({len(fields)} fields)")
        return []
    ids = []
    for n, line in enumerate(lines, 1):
        e = json.loads(line)
        for name, value in flatten(e):
            if name.startswith("fpolicy."):
                continue  # the documented custom fields
            if name not in fields:
                fail(problems, n, f"{name} is no ECS field")
                continue
            ftype, allowed, _ = fields[name]
            for v in value if isinstance(value, list) else [value]:
                check = TYPE_CHECKS.get(ftype)
                if check is None:
                    fail(problems, n, f"{name}: type {ftype} not checked here")
                elif not check(v):
                    fail(problems, n, f"{name}: {v!r} is not a {ftype}")
                if allowed and v not in allowed:
                    fail(problems, n, f"{name}: {v!r} is not an allowed value")
        expected = fields["event.category"][2]
        for cat in e["event"]["category"]:
            for t in e["event"]["type"]:
                if t not in expected.get(cat, []):
                    fail(problems, n, f"event.type {t} is not expected for category {cat}")
        ids.append(e["event"]["id"])
    return ids


def check_cef(lines, problems):
    import pycef

    ids = []
    for n, line in enumerate(lines, 1):
        msg = line.split("|", 3)[3].lstrip() if not line.startswith("CEF:") else line
        if line.startswith("CEF:"):
            pass
        else:
            host, app, msgid = line.split("|", 3)[:3]
            if not host or host == "-" or app != "fpolicy-bridge" or not msgid:
                fail(problems, n, f"syslog header {host!r} {app!r} {msgid!r}")
        c = pycef.parse(msg)
        if not c:
            fail(problems, n, f"pycef cannot read {msg[:80]!r}")
            continue
        if c.get("DeviceVendor") != "NetApp" or c.get("DeviceProduct") != "ONTAP FPolicy":
            fail(problems, n, f"header {c.get('DeviceVendor')} {c.get('DeviceProduct')}")
        if not c.get("filePath", "").startswith("/") or not c.get("externalId"):
            fail(problems, n, "filePath or externalId")
        if c.get("act") != c.get("DeviceEventClassID"):
            fail(problems, n, "act is the signature id")
        ids.append(c["externalId"])
    return ids


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["s3-sqs", "s3-eventbridge", "ocsf", "ecs", "cef"])
    p.add_argument("file")
    p.add_argument("ecs_flat", nargs="?")
    p.add_argument("--expect", type=int)
    p.add_argument("--unique-ids", action="store_true")
    p.add_argument("--events", help="the same events as fpolicy JSON lines: the truth for S3 keys and sizes")
    a = p.parse_args()
    lines = [l.rstrip("\n") for l in open(a.file, encoding="utf-8") if l.strip()]
    problems = []
    events = {}
    if a.events:
        for l in open(a.events, encoding="utf-8"):
            if l.strip():
                e = json.loads(l)
                events[e["event_id"]] = e
    if a.kind == "s3-sqs":
        ids = check_s3_sqs(lines, problems, events)
    elif a.kind == "s3-eventbridge":
        ids = check_s3_eventbridge(lines, problems, events)
    elif a.kind == "ocsf":
        ids = check_ocsf(lines, problems)
    elif a.kind == "ecs":
        ids = check_ecs(lines, problems, a.ecs_flat)
    else:
        ids = check_cef(lines, problems)
    if a.expect is not None and len(ids) != a.expect:
        fail(problems, a.file, f"{len(ids)} records, expected {a.expect}")
    if a.unique_ids and len(set(ids)) != len(ids):
        fail(problems, a.file, f"{len(ids) - len(set(ids))} duplicates")
    for problem in problems[:20]:
        print(f"{a.kind}: {problem}")
    bad = len(problems)
    print(f"format-conformance: {len(lines) if not bad else 0} passed, {bad} failed ({a.kind}, {len(lines)} lines)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
