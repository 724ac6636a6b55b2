"""sagemaker-runtime InvokeEndpoint: proxied to the inference server behind the endpoint.

moto 5.2.5 answers InvokeEndpoint with canned data. Here the request body goes to the server's
POST /invocations; a 4xx/5xx from the model becomes a ModelError (HTTP 424) with
OriginalStatusCode/OriginalMessage, as the real runtime returns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from hyenaflow.local.sagemaker.endpoints import Endpoints
from hyenaflow.local.wsgi import json_error, read_body, respond

INVOCATIONS_PATH = re.compile(r"^/endpoints/([^/]+)/invocations/?$")


def invoke_endpoint(
    endpoints: Endpoints,
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    account: str,
    region: str,
    name: str,
) -> Any:
    body = read_body(environ)
    endpoint = endpoints.context.backend(account, region).endpoints.get(name)
    server = endpoints.server_for(account, region, name)
    if endpoint is None or server is None:
        return json_error(
            start_response, "ValidationError", f"Endpoint {name} of account {account} not found."
        )
    status, answer, content_type = server.invoke(
        body,
        environ.get("CONTENT_TYPE") or "application/json",
        environ.get("HTTP_ACCEPT") or "application/json",
    )
    if 200 <= status < 300:
        return respond(
            start_response,
            200,
            answer,
            {"Content-Type": content_type, "x-Amzn-Invoked-Production-Variant": server.variant_name},
        )
    kind = "client" if 400 <= status < 500 else "server"
    original = answer.decode("utf-8", "replace")
    log_stream = f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{name}"
    message = (
        f'Received {kind} error ({status}) from primary with message "{original}". '
        f"See {server.log_path} for more information."
    )
    error = {
        "__type": "ModelError",
        "message": message,
        "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
        "OriginalStatusCode": status,
        "OriginalMessage": original,
        "LogStreamArn": log_stream,
    }
    return respond(
        start_response,
        424,
        json.dumps(error).encode(),
        {"Content-Type": "application/json", "x-amzn-ErrorType": "ModelError"},
    )
