"""The local endpoint over real HTTP: `python endpoint/serve.py` as a subprocess, as the local stack runs it.

Every task answers 200 with the documented JSON; every kind of bad input answers 400 with a
message saying what is wrong, never 500; a packaged artifact is served from its own `code/`.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import hyenadna
import serve
from hyenaflow.client import EndpointRequestError, invoke
from tests.support.tolerances import summed_log_likelihood_atol

REPO = Path(__file__).resolve().parents[2]
SERVE = REPO / "endpoint" / "serve.py"
REFERENCE_DIR = REPO / "tests" / "fixtures" / "hyenadna" / "tiny_reference"
PHAGE = REPO / "tests" / "fixtures" / "fasta" / "phix174_NC_001422.fa"
LIMITS = {"MAX_BATCH": "8", "MAX_PAYLOAD_BYTES": "200000", "MAX_NEW_TOKENS": "64"}
STARTUP_DEADLINE_S = 120.0


class RunningServer:
    def __init__(self, process: subprocess.Popen, url: str, log_path: Path) -> None:
        self.process, self.url, self.log_path = process, url, log_path

    def log(self) -> str:
        return self.log_path.read_text()


def start_server(
    script: Path, model_dir: Path, log_path: Path, env: dict[str, str] | None = None
) -> RunningServer:
    """Start serve.py on a free port; returns once it printed its URL (the model may still be loading)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SM_MODEL_DIR", "PORT")}
    # One torch thread: the 2-core CI machine also runs the test process.
    environ.update({"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **(env or {})})
    process = subprocess.Popen(
        [sys.executable, str(script), "--model-dir", str(model_dir), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=log_path.open("w"),
        env=environ,
        cwd=log_path.parent,
    )
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline().decode()
            if line.startswith("hyenaflow endpoint listening on "):
                return RunningServer(process, line.split()[-1], log_path)
        if process.poll() is not None:
            break
    process.kill()
    raise AssertionError(f"serve.py did not start:\n{log_path.read_text()}")


def wait_until_ready(server: RunningServer) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"serve.py exited {server.process.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(f"{server.url}/ping", timeout=5) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as error:
            assert error.code == 503  # loading
        time.sleep(0.05)  # poll interval, not a wait for an event
    raise AssertionError(f"/ping never answered 200:\n{server.log()}")


def stop(server: RunningServer) -> int:
    server.process.terminate()
    try:
        return server.process.wait(timeout=20)
    finally:
        server.process.stdout.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[RunningServer]:
    running = start_server(SERVE, REFERENCE_DIR, tmp_path_factory.mktemp("serve") / "serve.log", LIMITS)
    wait_until_ready(running)
    yield running
    assert stop(running) == 0  # SIGTERM is a clean shutdown


@pytest.fixture(scope="module")
def phix() -> str:
    lines = PHAGE.read_text().splitlines()
    return "".join(line.strip() for line in lines if not line.startswith(">"))


def post(
    url: str,
    body: bytes | dict | list,
    content_type: str = "application/json",
    accept: str = "application/json",
    path: str = "/invocations",
) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data=data, method="POST", headers={"Content-Type": content_type, "Accept": accept}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.headers["Content-Type"] == "application/json"
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# --- every task over HTTP ------------------------------------------------------------------


def test_ping_answers_200_once_the_model_is_loaded(server):
    with urllib.request.urlopen(f"{server.url}/ping", timeout=5) as response:
        assert (response.status, json.loads(response.read())) == (200, {"status": "ok"})


def test_embed_over_http_returns_pooled_and_per_position_embeddings(server, phix):
    status, answer = post(
        server.url, {"task": "embed", "sequences": [phix[:100], phix[:7]], "per_position": True}
    )
    assert status == 200
    assert answer["embedding_dim"] == 128
    assert [r["length"] for r in answer["results"]] == [100, 7]
    assert [len(r["per_position"]) for r in answer["results"]] == [100, 7]
    assert all(len(r["embedding"]) == 128 for r in answer["results"])


def test_score_over_http_batch_equals_single_calls(server, phix):
    sequences = [phix[:1000], phix[2000:2050], phix[3000:3500], "ACGTN" * 3]
    status, batched = post(server.url, {"task": "score", "sequences": sequences, "per_base": True})
    assert status == 200
    for sequence, together in zip(sequences, batched["results"], strict=True):
        _, single = post(server.url, {"task": "score", "sequences": [sequence], "per_base": True})
        alone = single["results"][0]
        assert together["scored_bases"] == len(sequence) - 1
        atol = summed_log_likelihood_atol(len(sequence) - 1)
        assert together["log_likelihood"] == pytest.approx(alone["log_likelihood"], abs=atol)
        # perplexity = exp(-ll / n): an error of atol in ll is a relative error of atol / n in it
        assert together["perplexity"] == pytest.approx(
            alone["perplexity"], rel=2 * atol / (len(sequence) - 1)
        )
        assert len(together["per_base_log_likelihood"]) == len(sequence)


def test_variant_effect_over_http(server, phix):
    sequence = phix[:400]
    variants = [{"position": 12, "ref": sequence[12], "alt": "T" if sequence[12] != "T" else "G"}]
    variants.append({"position": 100, "ref": sequence[100:104], "alt": sequence[100]})
    status, answer = post(server.url, {"task": "variant_effect", "sequence": sequence, "variants": variants})
    assert status == 200
    assert [r["position"] for r in answer["results"]] == [12, 100]
    for result in answer["results"]:
        assert result["log_likelihood_ratio"] == pytest.approx(
            result["alt_log_likelihood"] - answer["reference_log_likelihood"]
        )


def test_generate_over_http_is_reproducible_with_a_seed(server, phix):
    request = {"task": "generate", "sequences": [phix[:60]], "max_new_tokens": 10, "seed": 42, "top_k": 3}
    first = post(server.url, request)
    assert first == post(server.url, request)
    status, answer = first
    assert status == 200
    assert len(answer["results"][0]["generated"]) == 10
    assert answer["results"][0]["sequence"].startswith(phix[:60])


def test_client_invokes_the_local_server_by_url(server, phix):
    answer = invoke({"task": "score", "sequences": [phix[:200]]}, url=server.url)
    assert answer["results"][0]["scored_bases"] == 199
    assert invoke({"task": "score", "sequences": [phix[:200]]}, url=server.url + "/invocations") == answer
    with pytest.raises(
        EndpointRequestError, match=r"sequences\[0\]: position 2 \(0-based\): 'U' is not a nucleotide"
    ):
        invoke({"task": "score", "sequences": ["ACUG"]}, url=server.url)


# --- bad input: 400 with a message, never 500 ----------------------------------------------

TOO_LONG = "A" * 1027  # the tiny model's max_seq_len is 1026

BAD_REQUESTS = [
    pytest.param({"task": "fold", "sequences": ["ACGT"]}, "unknown task 'fold'", id="unknown-task"),
    pytest.param({"sequences": ["ACGT"]}, "request has no 'task'", id="missing-task"),
    pytest.param(
        {"task": "embed", "sequences": []}, "'sequences' must be a non-empty list", id="no-sequences"
    ),
    pytest.param({"task": "embed", "sequences": ["ACGT", ""]}, "sequences[1] is empty", id="empty-sequence"),
    pytest.param(
        {"task": "score", "sequences": ["AC", TOO_LONG]},
        "sequences[1] is 1027 bases, over this endpoint's limit of 1026",
        id="over-long",
    ),
    pytest.param({"task": "embed", "sequences": ["A"] * 9}, "over the limit of 8 (MAX_BATCH)", id="too-many"),
    pytest.param(
        {"task": "embed", "sequences": ["ACGT", "ACGT", "GATTACA-GATTACA"]},
        "sequences[2]: position 7 (0-based): '-' is not a nucleotide",
        id="non-dna",
    ),
    pytest.param({"task": "score", "sequences": ["A"]}, "scoring needs at least 2", id="one-base-score"),
    pytest.param(
        {"task": "embed", "sequences": ["AC"], "pooling": "max"},
        "unknown field(s) 'pooling'",
        id="unknown-field",
    ),
    pytest.param(
        {
            "task": "variant_effect",
            "sequence": "ACGTACGT",
            "variants": [{"position": 2, "ref": "T", "alt": "A"}],
        },
        "variants[0]: ref 'T' does not match the sequence at position 2 (0-based), which has 'G'",
        id="ref-mismatch",
    ),
    pytest.param(
        {"task": "variant_effect", "sequence": "ACGT", "variants": [{"position": 9, "ref": "A", "alt": "T"}]},
        "runs past the end of the 4-base sequence",
        id="variant-outside",
    ),
    pytest.param(
        {"task": "generate", "sequences": ["A" * 1000], "max_new_tokens": 30},
        "sequences[0] + max_new_tokens is 1030 bases",
        id="generate-past-max-len",
    ),
    pytest.param(
        {"task": "generate", "sequences": ["AC"], "max_new_tokens": 65},
        "(MAX_NEW_TOKENS",
        id="too-many-new-tokens",
    ),
    pytest.param(["ACGT"], "request must be a JSON object", id="not-an-object"),
]


@pytest.mark.parametrize(("payload", "expected"), BAD_REQUESTS)
def test_bad_request_gets_400_with_a_message_saying_what_is_wrong(server, payload, expected):
    status, answer = post(server.url, payload)
    assert status == 400
    assert expected in answer["error"]


def test_malformed_json_gets_400(server):
    status, answer = post(server.url, b'{"task": "score", "sequences": ["ACGT"')
    assert status == 400
    assert "request body is not valid JSON" in answer["error"]


def test_wrong_content_type_gets_400(server):
    status, answer = post(server.url, b"ACGTACGT", content_type="text/plain")
    assert status == 400
    assert "content type 'text/plain' is not supported" in answer["error"]


def test_unservable_accept_gets_400(server):
    status, answer = post(server.url, {"task": "score", "sequences": ["ACGT"]}, accept="text/csv")
    assert status == 400
    assert "Accept 'text/csv' cannot be served" in answer["error"]


def test_body_over_the_payload_cap_gets_400(server):
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    body = json.dumps({"task": "embed", "sequences": ["A" * 1000] * 201}).encode()  # > 200000 bytes
    connection.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 400
    assert "over the limit of 200000 (MAX_PAYLOAD_BYTES)" in json.loads(response.read())["error"]
    # The refused body was read and dropped, so the same connection serves the next request.
    connection.request(
        "POST",
        "/invocations",
        body=b'{"task": "score", "sequences": ["ACG"]}',
        headers={"Content-Type": "application/json"},
    )
    assert connection.getresponse().status == 200
    connection.close()


def test_chunked_body_is_read_and_capped_like_a_sized_one(server):
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    request = json.dumps({"task": "score", "sequences": ["ACGTTGCA"]}).encode()
    connection.request(
        "POST",
        "/invocations",
        body=iter([request[:10], request[10:]]),
        headers={"Content-Type": "application/json"},
    )
    response = connection.getresponse()
    assert (response.status, json.loads(response.read())["results"][0]["scored_bases"]) == (200, 7)
    too_big = (b"A" * 50_000 for _ in range(5))
    connection.request("POST", "/invocations", body=too_big, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 400
    assert "request body is 250000 bytes, over the limit of 200000" in json.loads(response.read())["error"]
    connection.close()


def test_unknown_path_gets_404(server):
    status, answer = post(server.url, {"task": "score", "sequences": ["ACGT"]}, path="/predict")
    assert status == 404
    assert "use POST /invocations" in answer["error"]


def test_other_methods_get_405(server):
    request = urllib.request.Request(server.url + "/invocations", data=b"{}", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 405
    assert "use GET /ping or POST /invocations" in json.loads(caught.value.read())["error"]


def test_no_bad_input_makes_the_server_answer_500(server):
    garbage = [
        b"",
        b"null",
        b"42",
        b'"ACGT"',
        b"\xff\xfe\x00",
        b'{"task": null}',
        b'{"task": ["score"]}',
        b'{"task": "score", "sequences": [null]}',
        b'{"task": "score", "sequences": {"a": "ACGT"}}',
        b'{"task": "score", "sequences": ["ACGT"], "per_base": 1}',
        b'{"task": "variant_effect", "sequence": "ACGT", "variants": [1]}',
        b'{"task": "variant_effect", "sequence": "ACGT", "variants": [{"position": true, "ref": "A", "alt": "C"}]}',
        b'{"task": "variant_effect", "sequence": "ACGT", "variants": [{"position": 0, "ref": "", "alt": "C"}]}',
        b'{"task": "variant_effect", "sequence": "AC", "variants": [{"position": 0, "ref": "AC", "alt": "G"}]}',
        b'{"task": "generate", "sequences": ["AC"], "max_new_tokens": 2, "temperature": "hot"}',
        b'{"task": "generate", "sequences": ["AC"], "max_new_tokens": 2, "seed": -1}',
        b'{"task": "generate", "sequences": ["AC"], "max_new_tokens": 1e3}',
        b'{"task": "embed", "sequences": ["ACGT"], "per_position": NaN}',
        b'{"task": "generate", "sequences": ["AC"], "max_new_tokens": 2, "temperature": 1e999}',
        b'{"task": "generate", "sequences": ["AC"], "max_new_tokens": 2, "seed": 1' + b"0" * 5000 + b"}",
        b"[" * 100_000 + b"]" * 100_000,
    ]
    for body in garbage:
        status, answer = post(server.url, body)
        assert status == 400, (body, answer)
        assert answer["error"]
    assert "Traceback" not in server.log()


# --- lifecycle and packaging -------------------------------------------------------------------


def test_ping_answers_503_and_invocations_are_refused_while_the_model_loads():
    # serve.py's server before its load_model() has run answers exactly as during loading.
    handler = serve.import_handler(REFERENCE_DIR)
    loading = serve.EndpointServer(("127.0.0.1", 0), handler, REFERENCE_DIR)
    thread = threading.Thread(target=loading.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{loading.server_address[1]}"
    try:
        with pytest.raises(urllib.error.HTTPError) as ping:
            urllib.request.urlopen(f"{url}/ping", timeout=5)
        assert ping.value.code == 503
        status, answer = post(url, {"task": "score", "sequences": ["ACGT"]})
        assert (status, answer["error"]) == (503, "model is still loading; poll GET /ping")
    finally:
        loading.shutdown()
        loading.server_close()


@pytest.mark.slow  # over 5 s on a loaded 2-core machine (make test-fast skips it)
def test_server_exits_1_with_the_reason_when_the_model_cannot_be_loaded(tmp_path):
    empty = tmp_path / "empty_model"
    empty.mkdir()
    running = start_server(SERVE, empty, tmp_path / "serve.log")
    assert running.process.wait(timeout=STARTUP_DEADLINE_S) == 1
    running.process.stdout.close()
    assert "no config.json; expected a HyenaDNA model directory" in running.log()


def make_packaged_artifact(directory: Path) -> hyenadna.HyenaDNAForCausalLM:
    """The model.tar.gz layout as training writes it (training_artifact.write_model_artifact)."""
    from training_artifact import write_model_artifact

    torch.manual_seed(0)
    config = hyenadna.config_for_size("tiny", d_model=32, d_inner=64, max_seq_len=256, filter_order=16)
    model = hyenadna.HyenaDNAForCausalLM(config).eval()
    history = {"train": [{"step": 1, "loss": 1.5}], "eval": [{"step": 1, "loss": 1.45}]}
    metrics = {"eval_loss": 1.45, "eval_perplexity": 4.26, "train_loss": 1.5, "steps": 1, "history": history}
    training_data = {"trained_on": ["phix174"], "split": {"block_bases": 1024, "val_fraction": 0.05}}
    write_model_artifact(directory, model, metrics, training_data, code_dir=REPO / "endpoint")
    return model


@pytest.mark.slow  # over 5 s on a loaded 2-core machine (make test-fast skips it)
def test_packaged_artifact_is_served_from_its_own_code_directory(tmp_path):
    artifact = tmp_path / "model"
    model = make_packaged_artifact(artifact)
    assert not (artifact / "code" / "serve.py").exists()  # training packs the handler, not a server
    # As the local stack runs it (the container's server: serve.py), with the artifact's own handler.
    running = start_server(SERVE, artifact, tmp_path / "serve.log")
    try:
        wait_until_ready(running)
        sequence = "ACGT" * 60
        answer = invoke({"task": "score", "sequences": [sequence]}, url=running.url)
        assert answer["results"][0]["scored_bases"] == 239
        with torch.no_grad():  # the packaged weights' own score
            ids = torch.from_numpy(hyenadna.encode_dna(sequence))[None]
            expected = -model(ids, labels=ids).loss.item() * 239
        assert answer["results"][0]["log_likelihood"] == pytest.approx(
            expected, abs=summed_log_likelihood_atol(239)
        )
        status, error = post(running.url, {"task": "score", "sequences": ["ACGT" * 65]})
        assert status == 400
        assert "sequences[0] is 260 bases, over this endpoint's limit of 256" in error["error"]
    finally:
        assert stop(running) == 0
    assert f"handler {artifact / 'code' / 'inference.py'}" in running.log()
