"""Makes the EKS token known-answer vector with botocore (the AWS SDK for Python, Apache-2.0),
the way `aws eks get-token` presigns it: STS GetCallerIdentity, SigV4 in the query, 60 s, the
signed header x-k8s-aws-id. Run with a Python that has botocore:
    python3 make_token_vector.py > token-vector.json   (from shared/desktops/src/eks/)
"""
import base64
import datetime
import json
from unittest import mock

import botocore.auth
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY, SECRET_KEY = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION, CLUSTER, TIME = "eu-west-1", "facility-desktops", "2026-12-07T00:00:00Z"

url = f"https://sts.{REGION}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15"
request = AWSRequest(method="GET", url=url, headers={"x-k8s-aws-id": CLUSTER})
when = datetime.datetime(2026, 12, 7, 0, 0, 0)
with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
    SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), "sts", REGION, expires=60).add_auth(request)
presigned = request.prepare().url
token = "k8s-aws-v1." + base64.urlsafe_b64encode(presigned.encode()).decode().rstrip("=")
print(json.dumps({"access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "region": REGION, "cluster": CLUSTER,
                  "time": TIME, "presigned_url": presigned, "token": token}, indent=2))
