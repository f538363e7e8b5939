"""Validates template.yaml without AWS: expands the SAM transform with aws-sam-translator, then
lints the CloudFormation it becomes with cfn-lint. (cfn-lint 1.x alone no longer expands SAM
and misses a bad runtime, an architecture, a timeout above 900 or a bad !GetAtt.)

    python scripts/validate_template.py [TEMPLATE]      exit 0 when valid, 1 with the findings
"""
import json
import os
import subprocess
import sys
import tempfile

import boto3  # noqa: F401  (installed with moto; samtranslator imports it)
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies(ManagedPolicyLoader):
    """The template names no AWS managed policies; nothing needs IAM to look them up."""

    def __init__(self):
        pass

    def load(self):
        return {}


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    with open(path) as f:
        sam = yaml_parse(f.read())
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # `sam package` replaces local code paths with the S3 object it uploads; so do we.
    for resource in sam.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function" and not str(props.get("CodeUri", "s3://")).startswith("s3://"):
            props["CodeUri"] = "s3://vecmigrate-artifacts/bootstrap.zip"
    try:
        cfn = transform(sam, {}, NoManagedPolicies())
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(f"{path}: SAM: {cause.message}")
        return 1
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as out:
        json.dump(cfn, out, indent=1)
    lint = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "cfn-lint"), "--format", "parseable", out.name],
        capture_output=True,
        text=True,
    )
    findings = [l for l in lint.stdout.splitlines() if l.strip()]
    for line in findings:
        print(f"{path} (expanded): {line.split(':', 1)[1] if ':' in line else line}")
    # cfn-lint's exit code is a bit mask: 1 failure to run, 2 errors, 4 warnings, 8 info.
    if lint.returncode & 3:
        print(lint.stderr, end="")
        return 1
    print(f"{path}: valid ({len(cfn['Resources'])} resources after the SAM transform)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
