"""SageMaker inference handler for HyenaDNA: model_fn, input_fn, predict_fn, output_fn.

The SageMaker PyTorch serving container (sagemaker-inference-toolkit) imports this module from
the model artifact's `code/` directory and calls these four functions; `serve.py` calls the same
functions behind a local HTTP server. The artifact's `code/` must hold this file, `dna_tasks.py`
and the `hyenadna` package: nothing is downloaded at load time.

Bad input raises `dna_tasks.InvalidRequestError`, a sagemaker-inference-toolkit
`BaseInferenceToolkitError` with status 400 inside the container, so the toolkit answers 400
(InvokeEndpoint then raises ModelError with OriginalStatusCode 400); any other exception is a
server fault and the toolkit answers 500. The request format is in endpoint/README.md.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import transformers

import hyenadna
from allocator import keep_freed_buffers
from dna_tasks import (
    JSON_CONTENT_TYPE,
    NUCLEOTIDE_IDS,
    EndpointSettings,
    InvalidRequestError,
    LoadedModel,
    TaskRequest,
    decode_request,
    media_type,
    run_task,
)

# Limits come from the environment once, when the container imports the handler.
SETTINGS = EndpointSettings.from_env()
_ACCEPTED_MEDIA_TYPES = {"", "*/*", "application/*", JSON_CONTENT_TYPE}


def select_device() -> torch.device:
    """The GPU when the container has one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_model(
    model_dir: str | Path, device: torch.device | None = None, settings: EndpointSettings = SETTINGS
) -> LoadedModel:
    """A trained artifact (config.json, model.safetensors, tokenizer files, code/...) or a
    LongSafari-layout checkpoint directory (config.json + weights) -> model ready to serve."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{model_dir}: no config.json; expected a HyenaDNA model directory "
            "(an unpacked model.tar.gz or a LongSafari *-seqlen-hf checkpoint)"
        )
    _check_vocabulary(model_dir)
    keep_freed_buffers()  # requests reuse mapped activation memory (see allocator.py)
    device = device or select_device()
    transformers.utils.logging.disable_progress_bar()  # no tqdm bar per load in the server log
    model = hyenadna.HyenaDNAForCausalLM.from_pretrained(model_dir, local_files_only=True)
    model.to(device).eval()
    max_seq_len = min(model.config.max_seq_len, settings.max_seq_len or math.inf)
    return LoadedModel(
        model=model, device=device, max_seq_len=max_seq_len, settings=settings, model_dir=str(model_dir)
    )


def _check_vocabulary(model_dir: Path) -> None:
    """Tokenizer files are optional (the built-in vocabulary is used), but if present they must agree.

    HyenaDNA character tokenizers describe their vocabulary by `characters` in
    tokenizer_config.json; the endpoint encodes with `hyenadna.encode_dna`, whose ids are those of
    the default characters A C G T N.
    """
    tokenizer_config = model_dir / "tokenizer_config.json"
    if not tokenizer_config.is_file():
        return
    characters = json.loads(tokenizer_config.read_text()).get("characters")
    if characters is not None and list(characters) != list(NUCLEOTIDE_IDS):
        raise ValueError(
            f"{tokenizer_config}: characters {characters} differ from the HyenaDNA vocabulary "
            f"{list(NUCLEOTIDE_IDS)} this endpoint encodes with; retrain or re-export the tokenizer"
        )


def model_fn(model_dir: str) -> LoadedModel:
    return load_model(model_dir)


def input_fn(input_data: bytes | str, content_type: str | None) -> TaskRequest:
    return decode_request(input_data, content_type, SETTINGS)


def predict_fn(data: TaskRequest, model: LoadedModel) -> dict[str, Any]:
    return run_task(data, model)


def output_fn(prediction: dict[str, Any], accept: str | None) -> str:
    accepted = {media_type(part) for part in (accept or "").split(",")}
    if not accepted & _ACCEPTED_MEDIA_TYPES:
        raise InvalidRequestError(
            f"Accept {accept!r} cannot be served; this endpoint answers {JSON_CONTENT_TYPE}"
        )
    return json.dumps(prediction, allow_nan=False)
