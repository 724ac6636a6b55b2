"""Endpoint request validation: every bad request is a 400 whose message says what is wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import inference
from dna_tasks import (
    EmbedRequest,
    EndpointSettings,
    GenerateRequest,
    InvalidRequestError,
    LoadedModel,
    ScoreRequest,
    Variant,
    VariantEffectRequest,
    batch_tokens_for,
    bucket_length,
    check_against_model,
    decode_request,
    parse_request,
)

SETTINGS = EndpointSettings(max_payload_bytes=10_000, max_batch=4, max_new_tokens=50)


def decode(payload, content_type: str = "application/json"):
    body = payload if isinstance(payload, bytes | str) else json.dumps(payload)
    return decode_request(body, content_type, SETTINGS)


def rejection(payload, content_type: str = "application/json") -> str:
    with pytest.raises(InvalidRequestError) as caught:
        decode(payload, content_type)
    assert caught.value.status_code == 400
    return caught.value.message


def test_valid_requests_of_every_task_parse_to_typed_requests():
    assert decode({"task": "embed", "sequences": ["ACGT"], "per_position": True}) == EmbedRequest(
        ["ACGT"], True
    )
    assert decode({"task": "score", "sequences": ["ACGT", "GG"]}) == ScoreRequest(["ACGT", "GG"], False)
    assert decode(
        {
            "task": "variant_effect",
            "sequence": "ACGTAC",
            "variants": [{"position": 2, "ref": "GT", "alt": "A"}],
        }
    ) == VariantEffectRequest("ACGTAC", [Variant(2, "GT", "A")])
    assert decode(
        {
            "task": "generate",
            "sequences": ["AC"],
            "max_new_tokens": 5,
            "temperature": 0,
            "top_k": 2,
            "seed": 7,
        }
    ) == GenerateRequest(["AC"], max_new_tokens=5, temperature=0.0, top_k=2, seed=7)


def test_lowercase_and_iupac_codes_are_read_as_the_model_reads_them():
    request = decode({"task": "score", "sequences": ["acgtRYn"]})
    assert request.sequences == ["ACGTNNN"]


def test_content_type_with_charset_and_toolkit_decoded_str_body_are_accepted():
    body = json.dumps({"task": "embed", "sequences": ["ACGT"]})
    assert decode_request(body, "application/json; charset=utf-8", SETTINGS) == EmbedRequest(["ACGT"])
    assert decode_request(body.encode(), "Application/JSON", SETTINGS) == EmbedRequest(["ACGT"])


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"task": "translate", "sequences": ["ACGT"]}, "unknown task 'translate'; use one of embed, score"),
        ({"sequences": ["ACGT"]}, "request has no 'task'"),
        ([{"task": "embed"}], "request must be a JSON object, got a list"),
        ({"task": "embed"}, "task 'embed' needs 'sequences'"),
        ({"task": "embed", "sequences": []}, "'sequences' must be a non-empty list"),
        ({"task": "embed", "sequences": "ACGT"}, "not one string; wrap it in [...]"),
        ({"task": "embed", "sequences": ["ACGT", ""]}, "sequences[1] is empty"),
        ({"task": "embed", "sequences": ["ACGT", 42]}, "sequences[1] must be a DNA string, got a number"),
        (
            {"task": "embed", "sequences": ["ACGT", "ACXGT"]},
            "sequences[1]: position 2 (0-based): 'X' is not a nucleotide",
        ),
        (
            {"task": "embed", "sequences": ["ACG T"]},
            "sequences[0]: position 3 (0-based): ' ' is not a nucleotide",
        ),
        (
            {"task": "embed", "sequences": ["ACGé"]},
            "sequences[0]: position 3 (0-based): 'é' is not a nucleotide",
        ),
        (
            {"task": "embed", "sequences": ["A"] * 5},
            "5 sequences in one request, over the limit of 4 (MAX_BATCH)",
        ),
        (
            {"task": "embed", "sequences": ["A"], "per_postion": True},
            "unknown field(s) 'per_postion' for task 'embed'",
        ),
        ({"task": "embed", "sequences": ["A"], "per_position": "yes"}, "per_position must be true or false"),
        ({"task": "score", "sequences": ["ACGT", "A"]}, "sequences[1] has 1 base; scoring needs at least 2"),
        ({"task": "variant_effect", "variants": []}, "variant_effect needs 'sequence'"),
        ({"task": "variant_effect", "sequence": "ACGT"}, "variant_effect needs 'variants'"),
        (
            {
                "task": "variant_effect",
                "sequence": "ACGT",
                "variants": [{"position": 1, "ref": "G", "alt": "T"}],
            },
            "variants[0]: ref 'G' does not match the sequence at position 1 (0-based), which has 'C'",
        ),
        (
            {
                "task": "variant_effect",
                "sequence": "ACGT",
                "variants": [{"position": 3, "ref": "TA", "alt": "T"}],
            },
            "variants[0]: ref 'TA' at position 3 runs past the end of the 4-base sequence",
        ),
        (
            {
                "task": "variant_effect",
                "sequence": "ACGT",
                "variants": [{"position": -1, "ref": "A", "alt": "T"}],
            },
            "variants[0].position must be a 0-based integer >= 0",
        ),
        (
            {"task": "variant_effect", "sequence": "ACGT", "variants": [{"position": 0, "ref": "A"}]},
            "variants[0] must have exactly position, ref and alt; missing alt",
        ),
        (
            {
                "task": "variant_effect",
                "sequence": "ACGT",
                "variants": [{"position": 0, "ref": "A", "alt": "Z"}],
            },
            "variants[0].alt: position 0 (0-based): 'Z' is not a nucleotide",
        ),
        (
            {
                "task": "variant_effect",
                "sequence": "ACGT",
                "variants": [{"position": 0, "ref": "A", "alt": "T"}] * 5,
            },
            "5 variants in one request, over the limit of 4 (MAX_BATCH)",
        ),
        (
            {"task": "generate", "sequences": ["AC"], "max_new_tokens": 0},
            "max_new_tokens must be an integer >= 1",
        ),
        (
            {"task": "generate", "sequences": ["AC", "GT"], "max_new_tokens": 30},
            "2 prompt(s) x max_new_tokens 30 = 60 new bases, over the limit of 50 per request (MAX_NEW_TOKENS",
        ),
        (
            {"task": "generate", "sequences": ["AC"], "max_new_tokens": 5, "temperature": -1},
            "temperature must be a finite number >= 0",
        ),
        (
            {"task": "generate", "sequences": ["AC"], "max_new_tokens": 5, "top_k": 1.5},
            "top_k must be an integer >= 0",
        ),
        (
            {"task": "generate", "sequences": ["AC"], "max_new_tokens": 5, "seed": "abc"},
            "seed must be a non-negative integer",
        ),
    ],
)
def test_bad_request_is_rejected_with_a_message_saying_what_is_wrong(payload, expected):
    assert expected in rejection(payload)


def test_malformed_json_is_rejected_with_its_position():
    assert "request body is not valid JSON: Expecting ',' delimiter at line 1 column" in rejection(
        b'{"task": "embed" "sequences": []}'
    )


def test_body_that_is_not_utf8_is_rejected():
    assert "request body is not UTF-8 (byte 0)" in rejection(b"\xff\xfe{}")


def test_wrong_content_type_is_rejected():
    message = rejection({"task": "embed", "sequences": ["ACGT"]}, content_type="text/csv")
    assert (
        "content type 'text/csv' is not supported; send JSON with Content-Type: application/json" in message
    )


def test_body_over_the_payload_cap_is_rejected_before_parsing():
    message = rejection(b"[" + b" " * 10_000 + b"]")
    assert "request body is 10002 bytes, over the limit of 10000 (MAX_PAYLOAD_BYTES)" in message


def test_sequences_longer_than_the_model_allows_are_rejected_by_length_checks():
    loaded = LoadedModel(model=None, device=torch.device("cpu"), max_seq_len=10, settings=SETTINGS)
    too_long = parse_request({"task": "score", "sequences": ["ACGT", "A" * 11]}, SETTINGS)
    with pytest.raises(
        InvalidRequestError, match=r"sequences\[1\] is 11 bases, over this endpoint's limit of 10"
    ):
        check_against_model(too_long, loaded)
    prompt = parse_request({"task": "generate", "sequences": ["A" * 8], "max_new_tokens": 3}, SETTINGS)
    with pytest.raises(InvalidRequestError, match=r"sequences\[0\] \+ max_new_tokens is 11 bases"):
        check_against_model(prompt, loaded)
    insertion = parse_request(
        {
            "task": "variant_effect",
            "sequence": "A" * 10,
            "variants": [{"position": 0, "ref": "A", "alt": "AG"}],
        },
        SETTINGS,
    )
    with pytest.raises(InvalidRequestError, match=r"variants\[0\]: the alt sequence is 11 bases"):
        check_against_model(insertion, loaded)
    check_against_model(parse_request({"task": "embed", "sequences": ["A" * 10]}, SETTINGS), loaded)


def test_a_megabase_sequence_passes_the_default_limits_of_a_1m_model_and_one_base_more_is_refused():
    # LongSafari's large-1m model: max_seq_len 1,000,002. A megabase is ~1 MB of JSON (6 MB cap).
    settings = EndpointSettings()
    loaded = LoadedModel(model=None, device=torch.device("cpu"), max_seq_len=1_000_002, settings=settings)
    for task in ("score", "embed"):
        megabase = decode_request(
            json.dumps({"task": task, "sequences": ["ACGT" * 250_000]}), "application/json", settings
        )
        check_against_model(megabase, loaded)
        too_long = decode_request(
            json.dumps({"task": task, "sequences": ["A" * 1_000_003]}), "application/json", settings
        )
        with pytest.raises(InvalidRequestError) as caught:
            check_against_model(too_long, loaded)
        assert caught.value.status_code == 400
        assert "sequences[0] is 1000003 bases, over this endpoint's limit of 1000002" in caught.value.message


def test_unacceptable_accept_header_is_a_client_error_and_json_accepts_are_served():
    assert inference.output_fn({"task": "score"}, "application/json") == '{"task": "score"}'
    assert inference.output_fn({"task": "score"}, None) == '{"task": "score"}'
    assert inference.output_fn({"task": "score"}, "text/html, */*;q=0.8") == '{"task": "score"}'
    with pytest.raises(InvalidRequestError, match="Accept 'text/csv' cannot be served") as caught:
        inference.output_fn({"task": "score"}, "text/csv")
    assert caught.value.status_code == 400


def test_settings_come_from_the_environment_and_bad_values_name_the_variable():
    settings = EndpointSettings.from_env(
        {"MAX_BATCH": "8", "MAX_PAYLOAD_BYTES": "1000", "MAX_SEQ_LEN": "512", "BATCH_TOKENS": "2048"}
    )
    assert (settings.max_batch, settings.max_payload_bytes, settings.max_seq_len) == (8, 1000, 512)
    assert settings.batch_tokens == 2048
    # Unset: by the device at load (small passes on CPU, see allocator.py; large on a GPU)
    assert EndpointSettings.from_env({}).batch_tokens is None
    assert (batch_tokens_for("cpu"), batch_tokens_for("cuda")) == (4096, 65536)
    assert EndpointSettings.from_env({}) == EndpointSettings()
    with pytest.raises(ValueError, match="MAX_BATCH='many' must be a positive integer"):
        EndpointSettings.from_env({"MAX_BATCH": "many"})


def test_bucket_length_depends_only_on_the_length_and_never_exceeds_max_seq_len():
    assert [bucket_length(n, 1026) for n in (1, 64, 65, 96, 97, 129, 1000, 1025)] == [
        64,
        64,
        96,
        96,
        128,
        192,
        1024,
        1026,
    ]


@pytest.mark.slow  # over 5 s on a loaded 2-core machine (make test-fast skips it)
def test_in_the_container_bad_input_raises_the_toolkits_error_type_with_status_400(tmp_path):
    # sagemaker-inference-toolkit's Transformer answers a BaseInferenceToolkitError with its
    # status_code and anything else with 500. A stand-in with the toolkit's module path and
    # constructor shows the handler's error is one when the toolkit is importable.
    toolkit = tmp_path / "sagemaker_inference"
    toolkit.mkdir()
    (toolkit / "__init__.py").write_text("")
    (toolkit / "errors.py").write_text(
        "class BaseInferenceToolkitError(Exception):\n"
        "    def __init__(self, status_code, message, phrase):\n"
        "        self.status_code, self.message, self.phrase = status_code, message, phrase\n"
        "        super().__init__(status_code, message, phrase)\n"
    )
    script = (
        "import inference\n"
        "from sagemaker_inference.errors import BaseInferenceToolkitError\n"
        "try:\n"
        "    inference.input_fn('{\"task\": \"fold\"}', 'application/json')\n"
        "except BaseInferenceToolkitError as error:\n"
        "    print(error.status_code, error.message)\n"
    )
    repo = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(repo / "endpoint")]),
    }
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.startswith("400 unknown task 'fold'")
