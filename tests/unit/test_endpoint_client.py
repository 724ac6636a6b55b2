"""hyenaflow.client on the SageMaker path: InvokeEndpoint through a botocore Stubber."""

from __future__ import annotations

import io
import json

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from botocore.stub import Stubber

from hyenaflow.client import EndpointError, EndpointRequestError, invoke

REQUEST = {"task": "score", "sequences": ["ACGTTGCA"]}


@pytest.fixture
def runtime():
    client = boto3.client(
        "sagemaker-runtime", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def expected_call(endpoint_name: str = "hyenaflow-endpoint") -> dict:
    return {
        "EndpointName": endpoint_name,
        "Body": json.dumps(REQUEST).encode(),
        "ContentType": "application/json",
        "Accept": "application/json",
    }


def test_invoke_sends_the_json_request_to_invoke_endpoint_and_decodes_the_answer(runtime):
    client, stubber = runtime
    answer = {"task": "score", "results": [{"log_likelihood": -9.5, "scored_bases": 7}]}
    body = json.dumps(answer).encode()
    stubber.add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": "application/json"},
        expected_call(),
    )
    assert invoke(REQUEST, endpoint_name="hyenaflow-endpoint", runtime_client=client) == answer


def test_container_400_arrives_as_request_error_with_the_handlers_message(runtime):
    client, stubber = runtime
    # The toolkit's error body: the message, then the traceback.
    original = (
        "sequences[0]: position 3 (0-based): 'U' is not a nucleotide\nTraceback (most recent call last): ..."
    )
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message="Received client error (400) from primary with message ...",
        http_status_code=424,
        modeled_fields={"OriginalStatusCode": 400, "OriginalMessage": original},
        expected_params=expected_call(),
    )
    with pytest.raises(EndpointRequestError) as caught:
        invoke(REQUEST, endpoint_name="hyenaflow-endpoint", runtime_client=client)
    assert caught.value.status_code == 400
    assert caught.value.message == "sequences[0]: position 3 (0-based): 'U' is not a nucleotide"


def test_container_500_is_an_endpoint_error_but_not_a_request_error(runtime):
    client, stubber = runtime
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        http_status_code=424,
        modeled_fields={"OriginalStatusCode": 500, "OriginalMessage": "CUDA out of memory"},
        expected_params=expected_call(),
    )
    with pytest.raises(EndpointError) as caught:
        invoke(REQUEST, endpoint_name="hyenaflow-endpoint", runtime_client=client)
    assert not isinstance(caught.value, EndpointRequestError)
    assert (caught.value.status_code, caught.value.message) == (500, "CUDA out of memory")


def test_service_errors_other_than_model_errors_propagate_unchanged(runtime):
    client, stubber = runtime
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ValidationError",
        service_message="Endpoint hyenaflow-missing of account 123 not found.",
        http_status_code=400,
        expected_params=expected_call("hyenaflow-missing"),
    )
    with pytest.raises(ClientError, match="Endpoint hyenaflow-missing of account 123 not found"):
        invoke(REQUEST, endpoint_name="hyenaflow-missing", runtime_client=client)


@pytest.mark.parametrize("target", [{}, {"endpoint_name": "e", "url": "http://127.0.0.1:1"}])
def test_invoke_needs_exactly_one_target(target):
    with pytest.raises(ValueError, match="pass exactly one of endpoint_name"):
        invoke(REQUEST, **target)
