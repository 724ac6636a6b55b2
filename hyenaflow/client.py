"""Invoke a HyenaDNA endpoint: a SageMaker endpoint (boto3 sagemaker-runtime) or a local server URL.

    from hyenaflow.client import invoke
    invoke({"task": "score", "sequences": ["ACGTTGCA"]}, url="http://127.0.0.1:8080")
    invoke({"task": "embed", "sequences": ["ACGTTGCA"]}, endpoint_name="hyenaflow-endpoint")

Both paths send the same JSON request (endpoint/README.md) and return the decoded JSON answer.
A request the endpoint rejects raises `EndpointRequestError` with the endpoint's message, whether
it came back as HTTP 400 from a local server or as InvokeEndpoint's ModelError carrying the
container's OriginalStatusCode 400.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

JSON_CONTENT_TYPE = "application/json"
DEFAULT_TIMEOUT_S = 70.0  # SageMaker gives a container 60 s to answer; AWS advises a 70 s client timeout


class EndpointError(Exception):
    """The endpoint answered with an error status; `status_code` and `message` say which and why."""

    def __init__(self, status_code: int, message: str) -> None:
        self.status_code = status_code
        self.message = message
        super().__init__(f"endpoint answered {status_code}: {message}")


class EndpointRequestError(EndpointError):
    """The endpoint rejected the request (4xx): fix the request, retrying will not help."""


def invoke(
    payload: dict[str, Any],
    *,
    endpoint_name: str | None = None,
    url: str | None = None,
    runtime_client: Any = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> dict[str, Any]:
    """Send one request to a SageMaker endpoint (`endpoint_name`) or a local server (`url`).

    `runtime_client` is a boto3 `sagemaker-runtime` client (one is created if omitted);
    `url` is the server's base URL (`http://host:port`) or its `/invocations` URL.
    """
    if (endpoint_name is None) == (url is None):
        raise ValueError("pass exactly one of endpoint_name (SageMaker) or url (local server)")
    body = json.dumps(payload).encode("utf-8")
    if url is not None:
        return _invoke_url(url, body, timeout_s)
    return _invoke_sagemaker(endpoint_name, body, runtime_client)


def _invoke_url(url: str, body: bytes, timeout_s: float) -> dict[str, Any]:
    target = url.rstrip("/")
    if not target.endswith("/invocations"):
        target += "/invocations"
    request = urllib.request.Request(
        target,
        data=body,
        method="POST",
        headers={"Content-Type": JSON_CONTENT_TYPE, "Accept": JSON_CONTENT_TYPE},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise _endpoint_error(error.code, error.read().decode("utf-8", errors="replace")) from None


def _invoke_sagemaker(endpoint_name: str, body: bytes, runtime_client: Any) -> dict[str, Any]:
    import boto3  # only this path needs it
    from botocore.exceptions import ClientError

    client = runtime_client or boto3.client("sagemaker-runtime")
    try:
        response = client.invoke_endpoint(
            EndpointName=endpoint_name, Body=body, ContentType=JSON_CONTENT_TYPE, Accept=JSON_CONTENT_TYPE
        )
    except ClientError as error:
        details = error.response.get("Error", {})
        # ModelError: the container answered 4xx/5xx; its own status and body ride along.
        if details.get("Code") == "ModelError" and "OriginalStatusCode" in error.response:
            raise _endpoint_error(
                int(error.response["OriginalStatusCode"]), error.response.get("OriginalMessage", "")
            ) from None
        raise
    return json.loads(response["Body"].read())


def _endpoint_error(status_code: int, text: str) -> EndpointError:
    """Our server answers {"error": ...}; the SageMaker toolkit sends 'message\\ntraceback'."""
    try:
        message = json.loads(text)["error"]
    except (ValueError, KeyError, TypeError):
        message = text.strip().splitlines()[0] if text.strip() else "(empty body)"
    error_type = EndpointRequestError if 400 <= status_code < 500 else EndpointError
    return error_type(status_code, message)
