"""Lints a SAM template offline.

cfn-lint alone does not report undefined !Ref / !Sub targets inside SAM resources, so the
template is first expanded with aws-sam-translator (as CloudFormation would), then both the
SAM template and its expansion go through cfn-lint.

Then, with CHECKOV set to a checkov executable, checkov's CloudFormation checks run on the
expanded template. Every finding is fixed, or skipped with its reason: the checks that hold for
every function, log group or secret alike in SKIPPED below, the others on their resource in the
template (Metadata: checkov: skip: [{id, comment}]).

usage: [CHECKOV=path/to/checkov] python infra/lint.py infra/template.yaml
"""

import json
import os
import subprocess
import sys
import tempfile

from cfnlint.decode import cfn_yaml
from samtranslator.translator.transform import transform


class NoManagedPolicies:
    """The translator asks IAM for managed policy ARNs; offline there are none to resolve."""

    def load(self):
        return {}


def expand(path):
    # The translator fills in pseudo parameters such as AWS::Region; any region will do.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = cfn_yaml.load(path)
    # Local CodeUri folders are uploaded by `sam package`; the translator wants an S3 URI.
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://placeholder-bucket/code.zip"
    return transform(json.loads(json.dumps(template)), {}, NoManagedPolicies())


# Skipped for every resource they apply to, each for one reason.
SKIPPED = {
    "CKV_AWS_115": "HTTP functions are bounded by the account's concurrency and API Gateway's throttling "
    "(a reserved limit would turn bursts into 429s for one route group); the scheduled ones reserve 1.",
    "CKV_AWS_116": "Dead-letter queues serve asynchronous invocations: API Gateway invokes synchronously, and "
    "a failed scheduled run is redone by the next one a minute later (every run is idempotent).",
    "CKV_AWS_117": "No private resources to reach: every call goes to public AWS endpoints or the configured "
    "HTTPS services, and a VPC would add NAT cost and cold-start time.",
    "CKV_AWS_173": "Function environments hold configuration only; every secret is read from Secrets Manager.",
    "CKV_AWS_158": "Logs carry no secrets or tokens (tested); CloudWatch encrypts them at rest with its own key.",
    "CKV_AWS_149": "Secrets use the account's AWS-managed Secrets Manager key; a customer-managed key is a "
    "deployment choice (KmsKeyId) with its own cost and key policy.",
}


def main():
    path = sys.argv[1]
    expanded = expand(path)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as out:
        json.dump(expanded, out, indent=1)
    status = 0
    for target in (path, out.name):
        result = subprocess.run([os.path.join(os.path.dirname(sys.executable), "cfn-lint"), target])
        print(f"cfn-lint {'ok' if result.returncode == 0 else 'FAILED'}: {target}")
        status = status or result.returncode
    checkov = os.environ.get("CHECKOV")
    if checkov:
        # --skip-download: no network here, and none is needed for the built-in checks.
        args = [checkov, "-f", out.name, "--framework", "cloudformation", "--compact", "--quiet", "--skip-download",
                "--skip-check", ",".join(SKIPPED)]
        result = subprocess.run(args)
        print(f"checkov {'ok' if result.returncode == 0 else 'FAILED'}: {path} (expanded)")
        status = status or result.returncode
    sys.exit(status)


if __name__ == "__main__":
    main()
