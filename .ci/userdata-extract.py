"""Writes the EC2 user-data script of deploy/cloudformation/fpolicy-bridge.yaml
with its ${...} placeholders filled with sample values, so it can be
checked with shellcheck and bash -n (it never runs in CI)."""
import re
import sys

from cfnlint.decode import decode

template, matches = decode(sys.argv[1])
if matches:
    sys.exit(f"cannot load {sys.argv[1]}: {matches}")
sub = template["Resources"]["Host"]["Properties"]["UserData"]["Fn::Base64"]["Fn::Sub"]
script = sub if isinstance(sub, str) else sub[0]
samples = {
    "AWS::Region": "us-east-1",
    "ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/fpolicy-bridge:1",
    "OntapSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ontap",
    "OntapCaBundleParameter": "/fpb/ontap-ca",
    "ConfigParameter": "/fpb/stack/config",
    "LogGroup": "/fpb/stack",
}
used = set(re.findall(r"\$\{([^}!]+)\}", script))
missing = used - samples.keys()
if missing:
    sys.exit(f"user data uses placeholders without a sample: {sorted(missing)}")
# ${!Literal} is CloudFormation's escape for a literal ${Literal}.
script = re.sub(r"\$\{([^}!]+)\}", lambda m: samples[m.group(1)], script).replace("${!", "${")
open(sys.argv[2], "w").write(script)
