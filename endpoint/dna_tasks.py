"""What the HyenaDNA endpoint computes: request validation and the four tasks on raw DNA.

Requests are JSON objects with DNA strings (never token ids); see endpoint/README.md for the
exact format. Everything here is plain Python over a loaded model, so the SageMaker handler
functions (inference.py), the local server (serve.py) and the tests share one code path. This
module and inference.py are what the model artifact's `code/` needs next to the `hyenadna`
package: they import only `hyenadna`, torch, transformers, numpy and the standard library.

Tokenisation follows HyenaDNA pretraining: one token per base, no [BOS]/[CLS] in front and no
[SEP] behind (the pretraining windows are bare bases; the LM loss predicts token t+1 from
tokens <= t). So:
- embeddings are the final-LayerNorm hidden states of the bases, mean-pooled over the bases;
- `score` sums log p(base_t | base_0 .. base_{t-1}) over t = 1 .. L-1 (natural log). The first
  base is context only: the model never learnt a distribution for a first token with no prefix.
  Perplexity = exp(-log_likelihood / (L - 1)), comparable with the training job's eval perplexity.

Batches: sequences are right-padded with [PAD] to a length bucket that depends only on their own
length (64, 96, 128, 192, ... capped at max_seq_len). HyenaDNA is causal, so the padding behind a
sequence cannot reach its real tokens, and because the padded length never depends on the other
sequences in the request, a batched result equals the one-at-a-time result (up to float rounding
of batched kernels, ~1e-6).
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

import hyenadna

# sagemaker-inference-toolkit (in the SageMaker PyTorch serving container) answers a
# BaseInferenceToolkitError with its own status_code and any other exception with 500; subclassing
# it is how a handler returns a 4xx there. Outside the container (tests, local server) the
# toolkit is absent and a stand-in with the same constructor is used.
try:
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ToolkitError
except ImportError:  # pragma: no cover - depends on the container

    class _ToolkitError(Exception):  # type: ignore[no-redef]
        def __init__(self, status_code: int, message: str, phrase: str) -> None:
            self.status_code = status_code
            self.message = message
            self.phrase = phrase
            super().__init__(status_code, message, phrase)


class InvalidRequestError(_ToolkitError):
    """The request is wrong (HTTP 400); the message says what is wrong and how to fix it."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message, "Bad Request")

    def __str__(self) -> str:
        return self.message


# Token id of each base, from the model package's alphabet (A=7 C=8 G=9 T=10 N=11).
NUCLEOTIDE_IDS: dict[str, int] = hyenadna.NUCLEOTIDE_IDS
TASKS = ("embed", "score", "variant_effect", "generate")
JSON_CONTENT_TYPE = "application/json"
_BUCKET_BASES = (64, 96)  # buckets are these times powers of two: 64, 96, 128, 192, 256, 384, ...


@dataclass(frozen=True)
class EndpointSettings:
    """Request limits, read once from the environment (names as documented in endpoint/README.md)."""

    max_payload_bytes: int = 6 * 1024 * 1024  # SageMaker's own InvokeEndpoint cap is 6 MB
    max_batch: int = 64  # sequences (or variants) per request
    max_seq_len: int | None = None  # tighter than the model's max_seq_len, if set
    max_new_tokens: int = 1024  # generated bases per request, all prompts together
    # Padded tokens per forward pass: sequences of one length bucket share a pass up to this; a
    # longer sequence runs alone through the model's chunked forward, this many positions per
    # chunk. None: chosen by the device when the model loads (batch_tokens_for).
    batch_tokens: int | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> EndpointSettings:
        def positive_int(name: str, default: int | None) -> int | None:
            raw = environ.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"environment variable {name}={raw!r} must be a positive integer") from None
            if value <= 0:
                raise ValueError(f"environment variable {name}={raw!r} must be a positive integer")
            return value

        return cls(
            max_payload_bytes=positive_int("MAX_PAYLOAD_BYTES", cls.max_payload_bytes),
            max_batch=positive_int("MAX_BATCH", cls.max_batch),
            max_seq_len=positive_int("MAX_SEQ_LEN", None),
            max_new_tokens=positive_int("MAX_NEW_TOKENS", cls.max_new_tokens),
            batch_tokens=positive_int("BATCH_TOKENS", None),
        )


def batch_tokens_for(device_type: str) -> int:
    """BATCH_TOKENS when none is set. On CPU small passes keep every activation under glibc's
    32 MiB mmap ceiling, so freed ones come back from the heap already mapped (allocator.py):
    16 x 1 kb in one request 461 -> 278 ms, 262,144 bases (large-1m shape) 67.7 -> 50.7 s, against
    passes of 65,536 (bench/bench_endpoint.py, bench/bench_megabase.py; docs/benchmarks.md). A
    GPU has no such ceiling and wants large passes: 65,536 there, as before (not measured here)."""
    return 4096 if device_type == "cpu" else 65536


@dataclass
class LoadedModel:
    """A HyenaDNA causal LM in eval mode on its device, with the limits requests are checked against."""

    model: Any  # hyenadna.HyenaDNAForCausalLM
    device: torch.device
    max_seq_len: int  # the model's, lowered by settings.max_seq_len
    settings: EndpointSettings = field(default_factory=EndpointSettings)
    model_dir: str = ""

    def __post_init__(self) -> None:
        if self.settings.batch_tokens is None:  # BATCH_TOKENS unset: by the device
            self.settings = replace(self.settings, batch_tokens=batch_tokens_for(self.device.type))


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbedRequest:
    sequences: list[str]
    per_position: bool = False


@dataclass(frozen=True)
class ScoreRequest:
    sequences: list[str]
    per_base: bool = False


@dataclass(frozen=True)
class Variant:
    position: int  # 0-based index of the first reference base
    ref: str
    alt: str


@dataclass(frozen=True)
class VariantEffectRequest:
    sequence: str
    variants: list[Variant]


@dataclass(frozen=True)
class GenerateRequest:
    sequences: list[str]  # prompts
    max_new_tokens: int = 100
    temperature: float = 1.0  # 0 = greedy
    top_k: int = 0  # 0 = no top-k cut
    seed: int | None = None
    allow_n: bool = False  # sample N as well as A C G T


TaskRequest = EmbedRequest | ScoreRequest | VariantEffectRequest | GenerateRequest

_TASK_FIELDS: dict[str, set[str]] = {
    "embed": {"sequences", "per_position"},
    "score": {"sequences", "per_base"},
    "variant_effect": {"sequence", "variants"},
    "generate": {"sequences", "max_new_tokens", "temperature", "top_k", "seed", "allow_n"},
}


def media_type(header: str | None) -> str:
    """'application/json; charset=utf-8' -> 'application/json'."""
    return (header or "").split(";", 1)[0].strip().lower()


def decode_request(
    body: bytes | bytearray | str, content_type: str | None, settings: EndpointSettings
) -> TaskRequest:
    """Bytes (or the toolkit's already-decoded str) of a JSON request -> a validated request.

    Checks everything that does not need the model; `check_against_model` does the rest.
    """
    if media_type(content_type) != JSON_CONTENT_TYPE:
        raise InvalidRequestError(
            f"content type {content_type!r} is not supported; send JSON with Content-Type: {JSON_CONTENT_TYPE}"
        )
    size = len(body.encode("utf-8")) if isinstance(body, str) else len(body)
    if size > settings.max_payload_bytes:
        raise InvalidRequestError(
            f"request body is {size} bytes, over the limit of {settings.max_payload_bytes} "
            "(MAX_PAYLOAD_BYTES); send fewer or shorter sequences per request"
        )
    try:
        text = body if isinstance(body, str) else bytes(body).decode("utf-8")
        payload = json.loads(text)
    except UnicodeDecodeError as error:
        raise InvalidRequestError(
            f"request body is not UTF-8 (byte {error.start}); send UTF-8 JSON"
        ) from None
    except json.JSONDecodeError as error:
        raise InvalidRequestError(
            f"request body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:
        raise InvalidRequestError("request body nests JSON too deeply; send the documented request") from None
    except ValueError as error:  # e.g. an integer literal of more than 4300 digits
        raise InvalidRequestError(f"request body is not usable JSON: {error}") from None
    return parse_request(payload, settings)


def parse_request(payload: Any, settings: EndpointSettings) -> TaskRequest:
    """A decoded JSON value -> a validated request (structure, types, alphabet, counts)."""
    if not isinstance(payload, dict):
        raise InvalidRequestError(f"request must be a JSON object, got {_json_type(payload)}")
    task = payload.get("task")
    if task is None:
        raise InvalidRequestError(f"request has no 'task'; use one of {', '.join(TASKS)}")
    if not isinstance(task, str) or task not in _TASK_FIELDS:
        raise InvalidRequestError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    unknown = sorted(set(payload) - _TASK_FIELDS[task] - {"task"})
    if unknown:
        raise InvalidRequestError(
            f"unknown field(s) {', '.join(map(repr, unknown))} for task {task!r}; "
            f"allowed: {', '.join(sorted(_TASK_FIELDS[task]))}"
        )
    if task == "variant_effect":
        return _parse_variant_effect(payload, settings)
    sequences = _sequences(payload, settings)
    if task == "embed":
        return EmbedRequest(sequences, per_position=_bool(payload, "per_position", False))
    if task == "score":
        for index, sequence in enumerate(sequences):
            _require_scorable(f"sequences[{index}]", sequence)
        return ScoreRequest(sequences, per_base=_bool(payload, "per_base", False))
    return _parse_generate(payload, sequences, settings)


def _parse_variant_effect(payload: dict, settings: EndpointSettings) -> VariantEffectRequest:
    if "sequence" not in payload:
        raise InvalidRequestError("variant_effect needs 'sequence': the reference DNA string")
    sequence = _dna("sequence", payload["sequence"])
    _require_scorable("sequence", sequence)
    raw_variants = payload.get("variants")
    if not isinstance(raw_variants, list) or not raw_variants:
        raise InvalidRequestError(
            "variant_effect needs 'variants': a non-empty list of "
            '{"position": <0-based int>, "ref": "<bases>", "alt": "<bases>"}'
        )
    if len(raw_variants) > settings.max_batch:
        raise InvalidRequestError(
            f"{len(raw_variants)} variants in one request, over the limit of {settings.max_batch} "
            "(MAX_BATCH); split them across requests"
        )
    variants = []
    for index, raw in enumerate(raw_variants):
        where = f"variants[{index}]"
        if not isinstance(raw, dict):
            raise InvalidRequestError(f"{where} must be an object with position, ref and alt")
        unknown = sorted(set(raw) - {"position", "ref", "alt"})
        missing = [key for key in ("position", "ref", "alt") if key not in raw]
        if unknown or missing:
            raise InvalidRequestError(
                f"{where} must have exactly position, ref and alt"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(map(repr, unknown))}" if unknown else "")
            )
        position = raw["position"]
        if not _is_int(position) or position < 0:
            raise InvalidRequestError(f"{where}.position must be a 0-based integer >= 0, got {position!r}")
        ref = _dna(f"{where}.ref", raw["ref"])
        alt = _dna(f"{where}.alt", raw["alt"])
        if position + len(ref) > len(sequence):
            raise InvalidRequestError(
                f"{where}: ref {ref!r} at position {position} runs past the end of the "
                f"{len(sequence)}-base sequence"
            )
        found = sequence[position : position + len(ref)]
        if found != ref:
            raise InvalidRequestError(
                f"{where}: ref {ref!r} does not match the sequence at position {position} "
                f"(0-based), which has {found!r}; check the position and the strand"
            )
        variants.append(Variant(position, ref, alt))
    return VariantEffectRequest(sequence, variants)


def _parse_generate(payload: dict, sequences: list[str], settings: EndpointSettings) -> GenerateRequest:
    max_new_tokens = payload.get("max_new_tokens", GenerateRequest.max_new_tokens)
    if not _is_int(max_new_tokens) or max_new_tokens < 1:
        raise InvalidRequestError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
    if max_new_tokens * len(sequences) > settings.max_new_tokens:
        raise InvalidRequestError(
            f"{len(sequences)} prompt(s) x max_new_tokens {max_new_tokens} = "
            f"{max_new_tokens * len(sequences)} new bases, over the limit of {settings.max_new_tokens} "
            "per request (MAX_NEW_TOKENS); ask for fewer"
        )
    temperature = payload.get("temperature", GenerateRequest.temperature)
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not math.isfinite(temperature)
        or temperature < 0
    ):
        raise InvalidRequestError(
            f"temperature must be a finite number >= 0 (0 = greedy), got {temperature!r}"
        )
    top_k = payload.get("top_k", GenerateRequest.top_k)
    if not _is_int(top_k) or top_k < 0:
        raise InvalidRequestError(f"top_k must be an integer >= 0 (0 = no cut), got {top_k!r}")
    seed = payload.get("seed")
    if seed is not None and (not _is_int(seed) or not 0 <= seed < 2**63 - settings.max_batch):
        raise InvalidRequestError(
            f"seed must be a non-negative integer below 2**63 - MAX_BATCH, got {seed!r}"
        )
    return GenerateRequest(
        sequences,
        max_new_tokens=max_new_tokens,
        temperature=float(temperature),
        top_k=top_k,
        seed=seed,
        allow_n=_bool(payload, "allow_n", False),
    )


def _sequences(payload: dict, settings: EndpointSettings) -> list[str]:
    raw = payload.get("sequences")
    if raw is None:
        raise InvalidRequestError(f"task {payload['task']!r} needs 'sequences': a list of DNA strings")
    if isinstance(raw, str):
        raise InvalidRequestError(
            "'sequences' must be a list of DNA strings, not one string; wrap it in [...]"
        )
    if not isinstance(raw, list) or not raw:
        raise InvalidRequestError(
            f"'sequences' must be a non-empty list of DNA strings, got {_json_type(raw)}"
        )
    if len(raw) > settings.max_batch:
        raise InvalidRequestError(
            f"{len(raw)} sequences in one request, over the limit of {settings.max_batch} (MAX_BATCH); "
            "split them across requests"
        )
    return [_dna(f"sequences[{index}]", value) for index, value in enumerate(raw)]


def _dna(where: str, value: Any) -> str:
    """Validate one DNA string; returns it upper-cased with IUPAC ambiguity codes as N (as training sees it)."""
    if not isinstance(value, str):
        raise InvalidRequestError(f"{where} must be a DNA string, got {_json_type(value)}")
    if not value:
        raise InvalidRequestError(f"{where} is empty; send at least one base")
    bad = hyenadna.first_invalid_dna_position(value)
    if bad is not None:
        raise InvalidRequestError(
            f"{where}: position {bad} (0-based): {value[bad]!r} is not a nucleotide "
            "(A, C, G, T, N or an IUPAC ambiguity code expected, either case)"
        )
    # Through the model's own token table, so 'r' -> 'N' here is exactly what the model sees.
    return _TOKEN_ID_TO_BASE[hyenadna.encode_dna(value)].tobytes().decode("ascii")


def _token_id_to_base_table() -> np.ndarray:
    table = np.full(max(NUCLEOTIDE_IDS.values()) + 1, ord("?"), dtype=np.uint8)
    for base, token_id in NUCLEOTIDE_IDS.items():
        table[token_id] = ord(base)
    return table


_TOKEN_ID_TO_BASE = _token_id_to_base_table()


def _require_scorable(where: str, sequence: str) -> None:
    if len(sequence) < 2:
        raise InvalidRequestError(
            f"{where} has 1 base; scoring needs at least 2 (the first base is context only: "
            "HyenaDNA predicts each base from the bases before it)"
        )


def _bool(payload: dict, key: str, default: bool) -> bool:
    value = payload.get(key, default)
    if not isinstance(value, bool):
        raise InvalidRequestError(f"{key} must be true or false, got {value!r}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def check_against_model(request: TaskRequest, loaded: LoadedModel) -> None:
    """Length limits, which depend on the model (its max_seq_len)."""
    limit = loaded.max_seq_len

    def check(where: str, length: int, extra: str = "") -> None:
        if length > limit:
            raise InvalidRequestError(
                f"{where} is {length} bases{extra}, over this endpoint's limit of {limit} "
                "(the model's max_seq_len, or MAX_SEQ_LEN); split it into windows"
            )

    if isinstance(request, VariantEffectRequest):
        check("sequence", len(request.sequence))
        for index, variant in enumerate(request.variants):
            alt_length = len(request.sequence) - len(variant.ref) + len(variant.alt)
            check(f"variants[{index}]: the alt sequence", alt_length)
            if alt_length < 2:
                raise InvalidRequestError(
                    f"variants[{index}]: the alt sequence has 1 base; scoring needs at least 2"
                )
    elif isinstance(request, GenerateRequest):
        for index, prompt in enumerate(request.sequences):
            check(f"sequences[{index}] + max_new_tokens", len(prompt) + request.max_new_tokens)
    else:
        for index, sequence in enumerate(request.sequences):
            check(f"sequences[{index}]", len(sequence))


# ---------------------------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------------------------


def run_task(request: TaskRequest, loaded: LoadedModel) -> dict[str, Any]:
    """Validated request -> JSON-ready response dict. Raises InvalidRequestError for limits."""
    check_against_model(request, loaded)
    with torch.inference_mode():
        if isinstance(request, EmbedRequest):
            return embed(request, loaded)
        if isinstance(request, ScoreRequest):
            return score(request, loaded)
        if isinstance(request, VariantEffectRequest):
            return variant_effect(request, loaded)
        return generate(request, loaded)


def bucket_length(length: int, max_seq_len: int) -> int:
    """Padded length for a sequence of `length` tokens: a function of the length alone."""
    scale = 1
    while True:
        for base in _BUCKET_BASES:
            if base * scale >= length:
                return min(base * scale, max_seq_len)
        scale *= 2


def _forward_batches(sequences: list[str], loaded: LoadedModel):
    """Yield (index, token ids [L], final hidden states [L, D]) for every sequence.

    Sequences sharing a length bucket run together, up to `batch_tokens` padded tokens a pass. A
    sequence longer than that runs alone through the model's chunked forward (memory bounded by
    `batch_tokens` positions at a time: a megabase fits in a few GB).
    """
    buckets: dict[int, list[int]] = {}
    for index, sequence in enumerate(sequences):
        buckets.setdefault(bucket_length(len(sequence), loaded.max_seq_len), []).append(index)
    backbone = loaded.model.base_model
    batch_tokens = loaded.settings.batch_tokens
    for padded_length, indices in sorted(buckets.items()):
        rows_per_pass = max(1, batch_tokens // padded_length)
        for start in range(0, len(indices), rows_per_pass):
            chunk = indices[start : start + rows_per_pass]
            ids = np.full((len(chunk), padded_length), hyenadna.PAD_ID, dtype=np.int64)
            for row, index in enumerate(chunk):
                ids[row, : len(sequences[index])] = hyenadna.encode_dna(sequences[index])
            input_ids = torch.from_numpy(ids).to(loaded.device)
            if padded_length > batch_tokens:
                hidden = backbone.forward_in_chunks(input_ids, batch_tokens)  # [1, Lp, D]
            else:
                hidden = backbone(input_ids=input_ids).last_hidden_state  # [B, Lp, D]
            for row, index in enumerate(chunk):
                length = len(sequences[index])
                yield index, input_ids[row, :length], hidden[row, :length].float()
            del hidden


def _token_log_likelihoods(ids: torch.Tensor, hidden: torch.Tensor, loaded: LoadedModel) -> np.ndarray:
    """log p(token_t | tokens < t) for t = 1 .. L-1, float64 [L-1], from the final hidden states [L, D].

    The LM head runs on `batch_tokens` positions at a time, so no [L, vocab] tensor is held for long
    sequences.
    """
    lm_head = loaded.model.get_output_embeddings()
    step = loaded.settings.batch_tokens
    scored = np.empty(len(ids) - 1, dtype=np.float64)
    for a in range(0, len(ids) - 1, step):
        b = min(len(ids) - 1, a + step)
        log_probs = F.log_softmax(lm_head(hidden[a:b]).float(), dim=-1)  # [b - a, V]
        scored[a:b] = log_probs.gather(-1, ids[a + 1 : b + 1, None]).squeeze(-1).double().cpu().numpy()
    return scored


def _log_likelihoods(sequences: list[str], loaded: LoadedModel) -> list[np.ndarray]:
    per_token: list[np.ndarray] = [np.empty(0)] * len(sequences)
    for index, ids, hidden in _forward_batches(sequences, loaded):
        per_token[index] = _token_log_likelihoods(ids, hidden, loaded)
    return per_token


def embed(request: EmbedRequest, loaded: LoadedModel) -> dict[str, Any]:
    results: list[dict[str, Any]] = [{} for _ in request.sequences]
    for index, _ids, hidden in _forward_batches(request.sequences, loaded):
        result: dict[str, Any] = {"length": hidden.shape[0], "embedding": hidden.mean(dim=0).cpu().tolist()}
        if request.per_position:
            result["per_position"] = hidden.cpu().tolist()
        results[index] = result
    return {"task": "embed", "embedding_dim": loaded.model.config.d_model, "results": results}


def score(request: ScoreRequest, loaded: LoadedModel) -> dict[str, Any]:
    results = []
    for token_ll in _log_likelihoods(request.sequences, loaded):
        total = float(token_ll.sum())
        result: dict[str, Any] = {
            "length": len(token_ll) + 1,
            "scored_bases": len(token_ll),
            "log_likelihood": total,
            "mean_log_likelihood": total / len(token_ll),
            "perplexity": math.exp(-total / len(token_ll)),
        }
        if request.per_base:
            # Aligned with the input: entry t scores base t; base 0 is context only (null).
            result["per_base_log_likelihood"] = [None, *token_ll.tolist()]
        results.append(result)
    return {"task": "score", "results": results}


def apply_variant(sequence: str, variant: Variant) -> str:
    """The alt sequence: ref bases at variant.position replaced by the alt bases (lengths may differ)."""
    return sequence[: variant.position] + variant.alt + sequence[variant.position + len(variant.ref) :]


def variant_effect(request: VariantEffectRequest, loaded: LoadedModel) -> dict[str, Any]:
    """Each variant alone against the reference: LLR = log p(alt sequence) - log p(ref sequence)."""
    sequences = [request.sequence] + [apply_variant(request.sequence, v) for v in request.variants]
    totals = [float(token_ll.sum()) for token_ll in _log_likelihoods(sequences, loaded)]
    reference = totals[0]
    results = [
        {
            "position": variant.position,
            "ref": variant.ref,
            "alt": variant.alt,
            "alt_log_likelihood": alt_total,
            "log_likelihood_ratio": alt_total - reference,
        }
        for variant, alt_total in zip(request.variants, totals[1:], strict=True)
    ]
    return {"task": "variant_effect", "reference_log_likelihood": reference, "results": results}


def generate(request: GenerateRequest, loaded: LoadedModel) -> dict[str, Any]:
    """Sample continuations, one base at a time.

    Prompt i samples with its own generator seeded `seed + i`, so a batched call gives prompt i
    the continuation a single call with seed `seed + i` gives. Prompts of equal length advance
    together: one forward pass over the prompts fills a `HyenaGenerationCache`, then each new
    base costs O(length) per layer (a dot product with the cached long filter), not a pass over
    the whole sequence. Sampling is restricted to A C G T (and N with allow_n).
    """
    seed = secrets.randbits(62) if request.seed is None else request.seed
    bases = "ACGTN" if request.allow_n else "ACGT"
    allowed_ids = torch.tensor([NUCLEOTIDE_IDS[b] for b in bases], device=loaded.device)
    generated: list[str] = [""] * len(request.sequences)
    groups: dict[int, list[int]] = {}
    for index, prompt in enumerate(request.sequences):
        groups.setdefault(len(prompt), []).append(index)
    for prompt_length, indices in groups.items():
        prompts = np.stack([hyenadna.encode_dna(request.sequences[i]) for i in indices])
        generators = [torch.Generator().manual_seed(seed + i) for i in indices]
        cache = hyenadna.HyenaGenerationCache(max_length=prompt_length + request.max_new_tokens)
        logits = _next_token_logits(torch.from_numpy(prompts).to(loaded.device), cache, loaded)
        new_ids: list[list[int]] = [[] for _ in indices]
        for step in range(request.max_new_tokens):
            choices = [
                _sample(row_logits, request.temperature, request.top_k, generators[row])
                for row, row_logits in enumerate(logits[:, allowed_ids].double().cpu())
            ]
            for row, choice in enumerate(choices):
                new_ids[row].append(choice)
            if step + 1 < request.max_new_tokens:
                logits = _next_token_logits(allowed_ids[choices][:, None], cache, loaded)
        for row, index in enumerate(indices):
            generated[index] = "".join(bases[choice] for choice in new_ids[row])
    results = [
        {"prompt_length": len(prompt), "generated": new, "sequence": prompt + new}
        for prompt, new in zip(request.sequences, generated, strict=True)
    ]
    return {"task": "generate", "seed": seed, "results": results}


def _next_token_logits(
    input_ids: torch.Tensor, cache: hyenadna.HyenaGenerationCache, loaded: LoadedModel
) -> torch.Tensor:
    """Logits [G, V] for the token after input_ids [G, T], continuing the cached sequence."""
    hidden = loaded.model.base_model(input_ids=input_ids, generation_cache=cache).last_hidden_state
    return loaded.model.get_output_embeddings()(hidden[:, -1]).float()


def _sample(logits: torch.Tensor, temperature: float, top_k: int, generator: torch.Generator) -> int:
    if temperature == 0:
        return int(torch.argmax(logits))
    if 0 < top_k < logits.numel():
        cutoff = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < cutoff, float("-inf"))
    # Shift by the max first: a tiny temperature then gives 0 and -inf (greedy), never inf - inf = nan.
    probs = torch.softmax((logits - logits.max()) / temperature, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))
