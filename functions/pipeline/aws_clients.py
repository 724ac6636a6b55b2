"""boto3 clients for the Lambdas, configured once in one place.

Retries: botocore's "standard" mode retries throttling and 5xx with exponential backoff and
jitter, which is what every handler wants; anything else is raised so Lambda's own retry and
the on-failure destination keep the event.

Local stack: boto3 honours AWS_ENDPOINT_URL, so the same code talks to the local moto server.
HealthOmics operations carry `control-storage-`/`storage-` host prefixes that botocore glues
onto the endpoint host; a local endpoint (127.0.0.1) cannot take them, so host-prefix
injection is turned off whenever an endpoint override is set.
"""

from __future__ import annotations

import os
from functools import cache

import boto3
from botocore.config import Config


def _config() -> Config:
    return Config(
        retries={"mode": "standard", "max_attempts": int(os.environ.get("AWS_MAX_ATTEMPTS", "8"))},
        inject_host_prefix=not bool(os.environ.get("AWS_ENDPOINT_URL")),
    )


@cache
def client(service: str):  # noqa: ANN201 - boto3 clients have no common static type
    """A cached boto3 client for `service` (one per Lambda container, reused across invocations)."""
    return boto3.client(service, config=_config())
