"""A small NCBI E-utilities client: esearch (history server) and efetch FASTA, rate limited.

Written on urllib from the standard library rather than Biopython's Bio.Entrez: the Lambda
package carries only boto3 and Powertools, and we need two endpoints, NCBI's request-rate rule
and retries, which is a page of code.

NCBI's rules (E-utilities help, "Usage Guidelines and Requirements"): at most 3 requests per
second per IP without an API key, 10 with one; send `tool` and `email`; use the history server
(usehistory=y, WebEnv + query_key) to fetch large result sets in batches. Over the limit NCBI
answers HTTP 429; 5xx happen in practice. Both are retried with exponential backoff (honouring
Retry-After).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from http.client import HTTPException
from typing import Any

from pipeline.rate_limiter import RateLimiter

RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class EutilsError(Exception):
    """E-utilities answered with an error (after retries, or one that retrying cannot fix)."""


@dataclass(frozen=True)
class SearchResult:
    count: int
    webenv: str
    query_key: str


class EutilsClient:
    def __init__(
        self,
        base_url: str,
        *,
        tool: str,
        email: str | None,
        api_key: str | None = None,
        max_attempts: int = 6,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 30.0,
        timeout_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._identity = {
            "tool": tool,
            **({"email": email} if email else {}),
            **({"api_key": api_key} if api_key else {}),
        }
        self.limiter = RateLimiter(10 if api_key else 3, clock=clock, sleep=sleep)
        self._max_attempts = max_attempts
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._timeout_s = timeout_s
        self._sleep = sleep

    def esearch(self, db: str, term: str, mindate: date, maxdate: date) -> SearchResult:
        """Search by modification date window; results stay on NCBI's history server."""
        params = {
            "db": db,
            "term": term,
            "usehistory": "y",
            "datetype": "mdat",
            "mindate": mindate.strftime("%Y/%m/%d"),
            "maxdate": maxdate.strftime("%Y/%m/%d"),
            "retmax": "0",  # ids are not needed here: efetch reads them from the history server
            "retmode": "json",
        }
        with self._request("esearch.fcgi", params) as response:
            payload = json.loads(response.read())
        result = payload.get("esearchresult", {})
        if "ERROR" in result or "count" not in result:
            raise EutilsError(f"esearch for {term!r} failed: {result.get('ERROR') or payload}")
        count = int(result["count"])
        if count and not (result.get("webenv") and result.get("querykey")):
            raise EutilsError(f"esearch for {term!r} returned no history (webenv/querykey): {result}")
        return SearchResult(count, result.get("webenv", ""), result.get("querykey", ""))

    def efetch_fasta(self, db: str, search: SearchResult, retstart: int, retmax: int) -> Iterator[bytes]:
        """FASTA records (header line + sequence lines, as bytes) of one batch of the search."""
        params = {
            "db": db,
            "WebEnv": search.webenv,
            "query_key": search.query_key,
            "retstart": str(retstart),
            "retmax": str(retmax),
            "rettype": "fasta",
            "retmode": "text",
        }
        with self._request("efetch.fcgi", params) as response:
            record: list[bytes] = []
            for line in response:  # streamed: one record in memory at a time
                if line.startswith(b">"):
                    if record:
                        yield b"".join(record)
                    record = [line]
                elif record:
                    if line.strip():
                        record.append(line)
                elif line.strip():
                    raise EutilsError(f"efetch returned no FASTA (first line {line[:80]!r})")
            if record:
                yield b"".join(record)

    def _request(self, endpoint: str, params: dict[str, str]) -> Any:
        """POST (long queries fit) with rate limiting and retries; returns the open response."""
        body = urllib.parse.urlencode({**params, **self._identity}).encode()
        url = self.base_url + endpoint
        for attempt in range(1, self._max_attempts + 1):
            self.limiter.wait()
            try:
                return urllib.request.urlopen(
                    urllib.request.Request(url, data=body, method="POST"), timeout=self._timeout_s
                )
            except urllib.error.HTTPError as err:
                if err.code not in RETRYABLE_STATUS or attempt == self._max_attempts:
                    detail = err.read()[:300].decode("utf-8", "replace")
                    raise EutilsError(
                        f"{endpoint}: HTTP {err.code} after {attempt} attempt(s): {detail}"
                    ) from None
                delay = self._retry_delay(attempt, err.headers.get("Retry-After"))
            except (urllib.error.URLError, HTTPException, TimeoutError, ConnectionError) as err:
                if attempt == self._max_attempts:
                    raise EutilsError(f"{endpoint}: {err} after {attempt} attempt(s)") from None
                delay = self._retry_delay(attempt, None)
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_delay(self, attempt: int, retry_after: str | None) -> float:
        backoff = min(self._backoff_max_s, self._backoff_base_s * 2 ** (attempt - 1))
        if retry_after and retry_after.isdigit():
            return max(backoff, min(float(retry_after), self._backoff_max_s))
        return backoff
