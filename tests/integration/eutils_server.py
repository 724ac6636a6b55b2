"""A local HTTP server that answers like NCBI E-utilities (esearch, efetch rettype=fasta).

Response formats follow NCBI's E-utilities documentation ("The E-utilities In-Depth"):
- esearch retmode=json: `{"header": {"type": "esearch", "version": "0.3"}, "esearchresult":
  {"count": "3", "retmax": "0", "retstart": "0", "querykey": "1", "webenv": "MCID_...",
  "idlist": [], "translationset": [], "querytranslation": "..."}}` (numbers are strings);
  retmode=xml: the `<eSearchResult>` document with the esearch DTD. A query error comes back as
  HTTP 200 with `"ERROR"` inside `esearchresult`.
- efetch rettype=fasta retmode=text: records as `>accession.version title`, sequence in lines of
  70, and an empty line after each record.
- Over the rate limit NCBI answers HTTP 429 with `{"error":"API rate limit exceeded", ...}`.

Failures are scripted per endpoint (`fail_next`). Every request is recorded with its arrival
time, so tests can check the client's request spacing.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class GenbankRecord:
    uid: str
    accession_version: str
    title: str
    sequence: str
    modified: date

    def fasta(self) -> str:
        lines = [self.sequence[i : i + 70] for i in range(0, len(self.sequence), 70)]
        return f">{self.accession_version} {self.title}\n" + "\n".join(lines) + "\n\n"


@dataclass
class RecordedRequest:
    at: float
    endpoint: str
    params: dict[str, str]


@dataclass
class FakeEutils:
    records: list[GenbankRecord] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    failures: dict[str, list[int]] = field(default_factory=dict)
    history: dict[str, list[GenbankRecord]] = field(default_factory=dict)
    _webenv_ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def fail_next(self, endpoint: str, *statuses: int) -> None:
        self.failures.setdefault(endpoint, []).extend(statuses)

    def calls(self, endpoint: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.endpoint == endpoint]

    # -- responses -------------------------------------------------------------------------

    def answer(self, endpoint: str, params: dict[str, str]) -> tuple[int, str, bytes]:
        self.requests.append(RecordedRequest(time.monotonic(), endpoint, params))
        planned = self.failures.get(endpoint)
        if planned:
            status = planned.pop(0)
            if status == 429:
                body = {
                    "error": "API rate limit exceeded",
                    "api-key": "127.0.0.1",
                    "count": "4",
                    "limit": "3",
                }
                return 429, "application/json", json.dumps(body).encode()
            return status, "text/html", f"<html><body><h1>{status} Server Error</h1></body></html>".encode()
        if endpoint == "esearch.fcgi":
            return self._esearch(params)
        if endpoint == "efetch.fcgi":
            return self._efetch(params)
        return 404, "text/plain", b"unknown endpoint"

    def _esearch(self, params: dict[str, str]) -> tuple[int, str, bytes]:
        term = params.get("term", "")
        if not term:
            body = {
                "header": {"type": "esearch", "version": "0.3"},
                "esearchresult": {"ERROR": "Empty term and query_key - nothing todo"},
            }
            return 200, "application/json", json.dumps(body).encode()
        low = _parse_day(params["mindate"]) if params.get("mindate") else date.min
        high = _parse_day(params["maxdate"]) if params.get("maxdate") else date.max
        assert params.get("datetype") == "mdat", params
        matches = [r for r in self.records if low <= r.modified <= high]
        webenv = f"MCID_{next(self._webenv_ids):08d}f1e0a3c2b4d6e8f0a1b2c3d4"
        self.history[webenv] = matches
        retmax = int(params.get("retmax", "20"))
        ids = [r.uid for r in matches[:retmax]]
        if params.get("retmode") == "json":
            body = {
                "header": {"type": "esearch", "version": "0.3"},
                "esearchresult": {
                    "count": str(len(matches)),
                    "retmax": str(len(ids)),
                    "retstart": "0",
                    "querykey": "1",
                    "webenv": webenv,
                    "idlist": ids,
                    "translationset": [],
                    "querytranslation": term,
                },
            }
            return 200, "application/json; charset=UTF-8", json.dumps(body).encode()
        id_xml = "".join(f"<Id>{uid}</Id>" for uid in ids)
        xml = (
            '<?xml version="1.0" encoding="UTF-8" ?>\n'
            '<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" '
            '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">\n'
            f"<eSearchResult><Count>{len(matches)}</Count><RetMax>{len(ids)}</RetMax><RetStart>0</RetStart>"
            f"<QueryKey>1</QueryKey><WebEnv>{webenv}</WebEnv><IdList>{id_xml}</IdList><TranslationSet/>"
            f"<QueryTranslation>{term}</QueryTranslation></eSearchResult>\n"
        )
        return 200, "text/xml; charset=UTF-8", xml.encode()

    def _efetch(self, params: dict[str, str]) -> tuple[int, str, bytes]:
        records = self.history.get(params.get("WebEnv", ""))
        if records is None or params.get("query_key") != "1":
            error = "<eFetchResult><ERROR>Cannot retrieve query from history</ERROR></eFetchResult>"
            return 400, "text/xml", error.encode()
        assert params.get("rettype") == "fasta", params
        start = int(params.get("retstart", "0"))
        count = int(params.get("retmax", "20"))
        text = "".join(r.fasta() for r in records[start : start + count])
        return 200, "text/plain; charset=UTF-8", text.encode()


def _parse_day(value: str) -> date:
    parts = [int(p) for p in value.split("/")] + [1, 1]
    return date(parts[0], parts[1], parts[2])


class _Handler(BaseHTTPRequestHandler):
    fake: FakeEutils

    def _respond(self, query: str) -> None:
        endpoint = urllib.parse.urlparse(self.path).path.rsplit("/", 1)[-1]
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        status, content_type, body = self.fake.answer(endpoint, params)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._respond(urllib.parse.urlparse(self.path).query)

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", "0"))
        self._respond(self.rfile.read(length).decode())

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass


class EutilsServer:
    """`with EutilsServer() as server:` -> `server.base_url` (ends with /), `server.fake`."""

    def __init__(self, fake: FakeEutils | None = None) -> None:
        self.fake = fake or FakeEutils()
        handler = type("Handler", (_Handler,), {"fake": self.fake})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/entrez/eutils/"

    def __enter__(self) -> EutilsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
