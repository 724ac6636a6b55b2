"""The one local AWS account: its id, its default Region, whom moto credits a request to, and the
environment that points an AWS client at it."""

from __future__ import annotations

import os

# moto's DEFAULT_ACCOUNT_ID (moto.core): every resource of the local stack lives in this account.
ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
# moto accepts any credentials; these say plainly that they are not real ones.
TEST_CREDENTIAL = "testing"


def account_for(access_key: str) -> str:
    """The account moto attributes to a request, by the same rules moto's responses use."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key or "AKIAEXAMPLE")


def client_environment(endpoint_url: str, region: str) -> dict[str, str]:
    """What an AWS client needs to reach the local endpoint: the AWS CLI, boto3, our Lambdas,
    training scripts and inference servers, and what `hyenaflow local up` prints as `export` lines.

    AWS_DISABLE_HOST_PREFIX_INJECTION: botocore puts `control-storage-` / `storage-` in front of
    the host of HealthOmics calls (the `hostPrefix` of their endpoint traits in the omics service
    model), which turns `127.0.0.1` into a name that does not resolve. The variable turns that
    off; honoured from botocore/boto3 1.37.5 and AWS CLI v1 1.38.5 on (older ones ignore it, and
    need `Config(inject_host_prefix=False)` in code).
    """
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ACCESS_KEY_ID": TEST_CREDENTIAL,
        "AWS_SECRET_ACCESS_KEY": TEST_CREDENTIAL,
        "AWS_SESSION_TOKEN": TEST_CREDENTIAL,
        "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
    }
