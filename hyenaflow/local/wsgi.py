"""WSGI plumbing for the emulations that sit in front of moto's server.

Who sent a request (from its SigV4 credential scope), its body (read without taking it from the
app behind), calling that app, and answering in the shapes botocore parses.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from hyenaflow.local.account import DEFAULT_REGION

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"

_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    424: "Failed Dependency",
    500: "Error",
    503: "Service Unavailable",
}


def request_scope(environ: dict[str, Any]) -> tuple[str, str, str]:
    """(access key, region, signing service) from a SigV4 Authorization header."""
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not match:
        return "", DEFAULT_REGION, ""
    return match.group(1), match.group(2), match.group(3)


def read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back so the downstream app can read it too."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def read_json(environ: dict[str, Any]) -> dict[str, Any]:
    """The request body of an awsJson operation as a dict (empty body: {})."""
    return json.loads(read_body(environ) or b"{}")


def call_app(app: WsgiApp, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Run a WSGI app and collect (status, headers, body)."""
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured["status"], captured["headers"] = int(status.split()[0]), headers

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()  # type: ignore[union-attr]
    return captured["status"], captured["headers"], body


def respond(
    start_response: Callable[..., Any], status: int, body: bytes, headers: dict[str, str] | None = None
) -> list[bytes]:
    all_headers = {"Content-Length": str(len(body)), "x-amzn-RequestId": str(uuid.uuid4())}
    all_headers.update(headers or {})
    start_response(f"{status} {_REASONS.get(status, 'Status')}", list(all_headers.items()))
    return [body]


def json_response(start_response: Callable[..., Any], payload: dict[str, Any]) -> list[bytes]:
    """A 200 answer of an awsJson operation."""
    return respond(start_response, 200, json.dumps(payload).encode(), {"Content-Type": JSON_CONTENT_TYPE})


def forward(
    start_response: Callable[..., Any], status: int, headers: list[tuple[str, str]], body: bytes
) -> list[bytes]:
    """Pass on what the app behind answered (call_app's result), with a fresh request id."""
    kept = {k: v for k, v in headers if k.lower() not in ("content-length", "x-amzn-requestid")}
    return respond(start_response, status, body, kept)


def json_error(start_response: Callable[..., Any], code: str, message: str, status: int = 400) -> list[bytes]:
    """An error in the awsJson/restJson shape botocore parses into ClientError(code, message)."""
    body = json.dumps({"__type": code, "message": message, "Message": message}).encode()
    return respond(
        start_response,
        status,
        body,
        {"Content-Type": JSON_CONTENT_TYPE, "x-amzn-ErrorType": code},
    )
