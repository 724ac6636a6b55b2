"""Local HyenaDNA endpoint with the SageMaker inference-container contract.

    python endpoint/serve.py --model-dir tests/fixtures/hyenadna/tiny_reference --port 8080
    curl -s localhost:8080/ping
    curl -s localhost:8080/invocations -H 'Content-Type: application/json' \\
        -d '{"task": "score", "sequences": ["ACGTACGTTTGACC"]}'

- `GET /ping`: 200 once the model is loaded, 503 while it loads.
- `POST /invocations`: the JSON request of endpoint/README.md; 200 with JSON, 400 with
  `{"error": "..."}` for bad input, 500 only for a fault of the server itself.
- Port: `--port`, else SAGEMAKER_BIND_TO_PORT, else PORT, else 8080 (0 picks a free port).
  Model: `--model-dir`, else SM_MODEL_DIR, else /opt/ml/model.
- Once bound it prints `hyenaflow endpoint listening on http://HOST:PORT` on stdout, then loads
  the model; poll /ping for readiness. It exits 1 if the model cannot be loaded.

As in the container, when the model directory has `code/inference.py` (a packaged artifact),
that handler (and the `hyenadna` copy next to it) serves; otherwise this checkout's
endpoint/inference.py and the installed `hyenadna` (the repository's, `pip install -e .`) do.

The server is the standard library's ThreadingHTTPServer: the local stack and tests need no web
framework, one thread per connection keeps /ping answering while a request runs, and the model
calls themselves are serialised by a lock (one model on one device gains nothing from
concurrent forward passes: torch already spreads one pass over all cores).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

LOG = logging.getLogger("hyenaflow.endpoint")
DEFAULT_MODEL_DIR = "/opt/ml/model"
DEFAULT_PORT = 8080
READ_BLOCK_BYTES = 1 << 16
DRAIN_LIMIT_BYTES = (
    64 << 20
)  # refused bodies are read and dropped up to this size, then the connection closes


def import_handler(model_dir: Path) -> ModuleType:
    """The `inference` module the SageMaker container would use for this model directory."""
    code_dir = model_dir / "code"
    if (code_dir / "inference.py").is_file():
        sys.path.insert(0, str(code_dir))  # as the container puts /opt/ml/model/code first
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))  # this checkout's inference.py
    return importlib.import_module("inference")


class EndpointServer(ThreadingHTTPServer):
    """HTTP server holding the handler module, the loaded model and the lock around model calls."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: ModuleType, model_dir: Path) -> None:
        super().__init__(address, InvocationsRequestHandler)
        self.handler = handler
        self.model_dir = model_dir
        self.model: Any = None
        self.load_failed = False
        self.predict_lock = threading.Lock()

    def handle_error(self, request: Any, client_address: tuple[str, int]) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # the client went away; nobody to answer
            LOG.info("connection from %s closed by the client: %s", client_address[0], sys.exc_info()[1])
            return
        super().handle_error(request, client_address)

    def load_model(self) -> None:
        started = time.perf_counter()
        try:
            self.model = self.handler.model_fn(str(self.model_dir))
        except Exception:
            self.load_failed = True
            LOG.error("could not load the model from %s:\n%s", self.model_dir, traceback.format_exc())
            threading.Thread(target=self.shutdown, daemon=True).start()
            return
        LOG.info("model loaded from %s in %.1f s", self.model_dir, time.perf_counter() - started)

    def invoke(self, body: bytes, content_type: str | None, accept: str | None) -> tuple[int, str]:
        """The toolkit's transform: input_fn -> predict_fn -> output_fn, with its error mapping."""
        try:
            data = self.handler.input_fn(body, content_type)
            with self.predict_lock:
                prediction = self.handler.predict_fn(data, self.model)
            return HTTPStatus.OK, self.handler.output_fn(prediction, accept)
        except Exception as error:
            # sagemaker-inference-toolkit convention: an exception carrying status_code picks the status.
            status = getattr(error, "status_code", None)
            if isinstance(status, int) and 400 <= status < 500:
                return status, json.dumps({"error": getattr(error, "message", str(error))})
            LOG.error("invocation failed:\n%s", traceback.format_exc())
            return HTTPStatus.INTERNAL_SERVER_ERROR, json.dumps(
                {"error": f"internal error ({type(error).__name__}); see the endpoint log"}
            )


class InvocationsRequestHandler(BaseHTTPRequestHandler):
    server: EndpointServer
    protocol_version = "HTTP/1.1"  # keep-alive, as SageMaker's front end uses
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms per request on keep-alive connections).
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        if self.path != "/ping":
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no such path {self.path}; use GET /ping"})
        elif self.server.model is None:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "loading"})
        else:
            self._send(HTTPStatus.OK, {"status": "ok"})

    def do_POST(self) -> None:
        body = self._read_body()  # read even when refusing, so the client gets our answer, not a reset
        if body is None:
            return
        if self.path != "/invocations":
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no such path {self.path}; use POST /invocations"})
        elif self.server.model is None:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "model is still loading; poll GET /ping"})
        else:
            status, text = self.server.invoke(
                body, self.headers.get("Content-Type"), self.headers.get("Accept")
            )
            self._send(status, text)

    def _method_not_allowed(self) -> None:
        if self._read_body() is not None:
            self._send(
                HTTPStatus.METHOD_NOT_ALLOWED,
                {"error": f"{self.command} is not served; use GET /ping or POST /invocations"},
            )

    do_PUT = do_DELETE = do_PATCH = _method_not_allowed

    def _read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked), or None after answering 400.

        A body over MAX_PAYLOAD_BYTES is read and dropped (never held in memory) up to
        DRAIN_LIMIT_BYTES so the client sees the 400; past that the connection is closed.
        """
        limit = self.server.handler.SETTINGS.max_payload_bytes
        chunks: list[bytes] = []
        size = 0
        for block in self._body_blocks():
            if block is None:
                return None
            size += len(block)
            if size <= limit:
                chunks.append(block)
            elif size > DRAIN_LIMIT_BYTES:
                self.close_connection = True
                break
        if size > limit:
            self._send(
                HTTPStatus.BAD_REQUEST,
                {
                    "error": f"request body is {'over ' if self.close_connection else ''}{size} bytes, over the "
                    f"limit of {limit} (MAX_PAYLOAD_BYTES); send fewer or shorter sequences per request"
                },
            )
            return None
        return b"".join(chunks)

    def _body_blocks(self) -> Iterator[bytes | None]:
        """Blocks of the body as they arrive; None (after answering 400) if its framing is wrong."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
                try:
                    chunk_size = int(size_line, 16)
                except ValueError:
                    yield self._refuse_framing(f"malformed chunk size {size_line[:20]!r} in a chunked body")
                    return
                if chunk_size == 0:
                    while self.rfile.readline(1024).strip():  # trailer fields, up to the blank line
                        pass
                    return
                yield from self._read_exactly(chunk_size)
                self.rfile.readline(1024)  # the CRLF closing the chunk
        else:
            length = self.headers.get("Content-Length", "0" if self.command != "POST" else None)
            if length is None or not length.isdigit():
                yield self._refuse_framing("Content-Length header missing or not a number")
                return
            yield from self._read_exactly(int(length))

    def _read_exactly(self, size: int) -> Iterator[bytes]:
        while size > 0:
            block = self.rfile.read(min(size, READ_BLOCK_BYTES))
            if not block:
                raise ConnectionError("client closed the connection in the middle of the request body")
            size -= len(block)
            yield block

    def _refuse_framing(self, problem: str) -> None:
        # Where the body ends is unknown, so the connection cannot carry another request.
        self.close_connection = True
        self._send(HTTPStatus.BAD_REQUEST, {"error": problem})

    def _send(self, status: int, body: dict[str, Any] | str) -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        LOG.info("%s %s", self.address_string(), format % args)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    environ = os.environ
    parser = argparse.ArgumentParser(
        description="Serve a HyenaDNA model with the SageMaker container contract."
    )
    parser.add_argument(
        "--model-dir", type=Path, default=Path(environ.get("SM_MODEL_DIR", DEFAULT_MODEL_DIR))
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(environ.get("SAGEMAKER_BIND_TO_PORT") or environ.get("PORT") or DEFAULT_PORT),
    )
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to listen on every interface")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    handler = import_handler(args.model_dir)
    server = EndpointServer((args.host, args.port), handler, args.model_dir)
    host, port = server.server_address[:2]
    print(f"hyenaflow endpoint listening on http://{host}:{port}", flush=True)
    LOG.info("model dir %s, handler %s", args.model_dir, handler.__file__)
    # shutdown() waits for serve_forever(), which runs in this (the signal-handling) thread.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    threading.Thread(target=server.load_model, name="load-model", daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 1 if server.load_failed else 0


if __name__ == "__main__":
    sys.exit(main())
