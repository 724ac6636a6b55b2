"""What a handler does at cold import (issue 15: <= 300 ms of CPU, bench/bench_lambda_cold_import.py):
no boto3 client (botocore loads a service model for each, 35-90 ms), no heavy ML library, no
Biopython, no module only some events need. Each check imports the handler in a fresh interpreter
with the template's environment, as Lambda would; a test fails when one of these comes back."""

from __future__ import annotations

import pytest

from tests.support.lambda_import import HANDLERS, imported_in_lambda

# Never at a handler's import: the ML stack and the SDK (never in a Lambda at all), Biopython (flat
# files only, and only ingest has it), Powertools' parser (it builds every event model Powertools
# ships; pipeline/events.py) and parameters (poll_genbank's SSM key, fetched on its first poll).
NEVER_AT_IMPORT = [
    "torch",
    "numpy",
    "transformers",
    "sagemaker",
    "Bio",
    "aws_lambda_powertools.utilities.parser",
    "aws_lambda_powertools.utilities.parameters",
]
PROBE = """
import json, sys
import {handler}.handler
from pipeline import aws_clients
print(json.dumps({{
    "clients": aws_clients.client.cache_info().currsize,
    "modules": sorted(m for m in sys.modules),
}}))
"""


@pytest.fixture(scope="module", params=HANDLERS)
def imported(request) -> tuple[str, dict]:
    # POWERTOOLS_TRACE_DISABLED: the X-Ray SDK has its own tests (test_lambda_tracing.py)
    return request.param, imported_in_lambda(request.param, PROBE, POWERTOOLS_TRACE_DISABLED="true")


def test_a_handler_makes_no_aws_client_at_import(imported):
    # Each client costs botocore a service model at the first one: the idempotency store's DynamoDB
    # client alone was ~90 ms of ingest's cold import. Clients are made on their first call.
    handler, found = imported
    assert found["clients"] == 0, f"{handler} made {found['clients']} boto3 client(s) at import"


def test_a_handler_imports_no_heavy_or_path_specific_library(imported):
    handler, found = imported
    loaded = set(found["modules"])
    assert [name for name in NEVER_AT_IMPORT if name in loaded] == [], handler


def test_ingest_loads_neither_the_flat_file_reader_nor_the_state_table_at_import():
    # Flat files are the rare input (the FASTA path never reads them); the state table is the
    # training functions' (ingest's only DynamoDB use is the idempotency record).
    loaded = set(imported_in_lambda("ingest_fasta", PROBE, POWERTOOLS_TRACE_DISABLED="true")["modules"])
    assert "pipeline.ingest.flat_file_stream" not in loaded
    assert "pipeline.state_table" not in loaded
