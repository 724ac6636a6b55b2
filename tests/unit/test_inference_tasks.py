"""Endpoint tasks on the parity checkpoint: what each number means, and batches equal single calls."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import hyenadna
import inference
from dna_tasks import EndpointSettings, parse_request, run_task
from tests.support.tolerances import PER_BASE_ATOL, summed_log_likelihood_atol

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hyenadna"
REFERENCE_DIR = FIXTURES / "tiny_reference"
REFERENCE_IO = FIXTURES / "tiny_reference_io.safetensors"
PHAGE = Path(__file__).resolve().parents[1] / "fixtures" / "fasta" / "lambda_phage_NC_001416.fa"
SETTINGS = EndpointSettings(batch_tokens=2048)  # small passes, so batches split into several


@pytest.fixture(scope="module")
def loaded():
    return inference.load_model(REFERENCE_DIR, torch.device("cpu"), SETTINGS)


@pytest.fixture(scope="module")
def genome() -> str:
    lines = PHAGE.read_text().splitlines()
    return "".join(line.strip() for line in lines if not line.startswith(">"))


def call(loaded, **payload):
    return run_task(parse_request(payload, SETTINGS), loaded)


def test_per_base_scores_are_the_reference_models_next_base_log_probabilities(loaded):
    reference = load_file(REFERENCE_IO)
    ids, logits = reference["input_ids"], reference["logits"].double()
    bases = {7: "A", 8: "C", 9: "G", 10: "T", 11: "N"}
    sequences = ["".join(bases[i] for i in row.tolist()) for row in ids]
    expected = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)

    results = call(loaded, task="score", sequences=sequences, per_base=True)["results"]

    for result, want in zip(results, expected, strict=True):
        per_base = result["per_base_log_likelihood"]
        assert per_base[0] is None  # the first base is context only
        assert np.abs(np.array(per_base[1:]) - want.numpy()).max() <= 1e-4  # the parity target
        assert result["scored_bases"] == 999
        assert result["log_likelihood"] == pytest.approx(float(want.sum()), abs=999 * 1e-4)
        assert result["perplexity"] == pytest.approx(math.exp(-result["log_likelihood"] / 999))
        assert result["mean_log_likelihood"] == pytest.approx(result["log_likelihood"] / 999)


def test_score_batch_of_mixed_lengths_equals_one_at_a_time(loaded, genome):
    sequences = [genome[i * 997 : i * 997 + n] for i, n in enumerate((2, 63, 64, 65, 300, 1000, 1026, 97, 5))]
    batched = call(loaded, task="score", sequences=sequences, per_base=True)["results"]
    for sequence, together in zip(sequences, batched, strict=True):
        alone = call(loaded, task="score", sequences=[sequence], per_base=True)["results"][0]
        n_terms = len(sequence) - 1
        assert together["log_likelihood"] == pytest.approx(
            alone["log_likelihood"], abs=summed_log_likelihood_atol(n_terms)
        )
        assert np.allclose(
            together["per_base_log_likelihood"][1:], alone["per_base_log_likelihood"][1:], atol=PER_BASE_ATOL
        )


def test_a_batch_runs_in_passes_of_batch_tokens_with_the_results_of_one_pass(genome):
    # 16 x 1 kb (bucket 1,024 tokens): four passes of 4 sequences with the default 4,096 tokens a
    # pass (activations that stay mapped, allocator.py), one pass of 16 with 16,384; same answers.
    sequences = [genome[i * 1000 : i * 1000 + 1000] for i in range(16)]
    results, passes = {}, {}
    for pass_tokens in (None, 16384):  # None: the CPU default, 4,096
        settings = EndpointSettings(batch_tokens=pass_tokens)
        model = inference.load_model(REFERENCE_DIR, torch.device("cpu"), settings)
        pass_tokens = model.settings.batch_tokens
        rows = passes.setdefault(pass_tokens, [])

        def count_rows(_module, _args, kwargs, _output, rows=rows):
            rows.append(kwargs["input_ids"].shape[0])

        hook = model.model.base_model.register_forward_hook(count_rows, with_kwargs=True)
        request = parse_request({"task": "score", "sequences": sequences}, settings)
        results[pass_tokens] = [r["log_likelihood"] for r in run_task(request, model)["results"]]
        hook.remove()
    assert passes == {4096: [4, 4, 4, 4], 16384: [16]}
    assert results[4096] == pytest.approx(results[16384], abs=summed_log_likelihood_atol(999))


def test_embed_batch_of_mixed_lengths_equals_one_at_a_time_and_the_unpadded_model(loaded, genome):
    sequences = [genome[i * 1013 : i * 1013 + n] for i, n in enumerate((1, 70, 500, 1000, 33))]
    batched = call(loaded, task="embed", sequences=sequences, per_position=True)
    assert batched["embedding_dim"] == 128
    for sequence, together in zip(sequences, batched["results"], strict=True):
        alone = call(loaded, task="embed", sequences=[sequence], per_position=True)["results"][0]
        with torch.no_grad():
            unpadded = loaded.model.base_model(torch.from_numpy(hyenadna.encode_dna(sequence))[None])
        hidden = unpadded.last_hidden_state[0].numpy()
        assert together["length"] == len(sequence)
        assert np.allclose(together["embedding"], alone["embedding"], atol=1e-5)
        assert np.allclose(together["per_position"], alone["per_position"], atol=1e-5)
        # Padding behind a sequence does not reach it: same as running it with no padding at all.
        assert np.allclose(together["per_position"], hidden, atol=1e-4)
        assert np.allclose(together["embedding"], hidden.mean(axis=0), atol=1e-4)


def test_sequences_longer_than_batch_tokens_run_chunked_with_the_same_results(loaded, genome):
    # BATCH_TOKENS=256: the 1000-base sequence runs through the chunked forward, 256 positions a
    # chunk, and its log-likelihoods are computed 256 positions at a time.
    chunked = inference.LoadedModel(
        model=loaded.model,
        device=loaded.device,
        max_seq_len=loaded.max_seq_len,
        settings=EndpointSettings(batch_tokens=256),
    )
    sequences = [genome[:1000], genome[5000:5300], genome[9000:9100]]
    for task, options in (("score", {"per_base": True}), ("embed", {"per_position": True})):
        expected = call(loaded, task=task, sequences=sequences, **options)["results"]
        got = run_task(parse_request({"task": task, "sequences": sequences, **options}, SETTINGS), chunked)[
            "results"
        ]
        for ours, theirs in zip(got, expected, strict=True):
            if task == "score":
                assert np.allclose(
                    ours["per_base_log_likelihood"][1:],
                    theirs["per_base_log_likelihood"][1:],
                    atol=PER_BASE_ATOL,
                )
            else:
                assert np.allclose(ours["per_position"], theirs["per_position"], atol=1e-5)


@pytest.mark.slow
def test_a_megabase_is_scored_in_one_request(genome):
    # A narrow random model with LongSafari large-1m's max_seq_len: the 1,000,000 bases run
    # through the chunked forward (BATCH_TOKENS positions at a time), as one request. (The
    # chunked forward's equality with the ordinary one is tested in test_hyenadna_inference.py.)
    torch.manual_seed(0)
    config = hyenadna.config_for_size(
        "tiny", d_model=8, d_inner=16, n_layer=1, filter_order=8, max_seq_len=1_000_002
    )
    settings = EndpointSettings()
    megabase_model = inference.LoadedModel(
        model=hyenadna.HyenaDNAForCausalLM(config).eval(),
        device=torch.device("cpu"),
        max_seq_len=config.max_seq_len,
        settings=settings,
    )
    sequence = (genome * 21)[:1_000_000]
    scored = run_task(parse_request({"task": "score", "sequences": [sequence]}, settings), megabase_model)
    result = scored["results"][0]
    assert (result["length"], result["scored_bases"]) == (1_000_000, 999_999)
    assert math.isfinite(result["log_likelihood"]) and result["perplexity"] > 1


def test_embed_without_per_position_returns_only_the_pooled_vector(loaded):
    result = call(loaded, task="embed", sequences=["ACGTTGCA"])["results"][0]
    assert set(result) == {"length", "embedding"}
    assert len(result["embedding"]) == 128


def test_variant_effect_is_the_log_likelihood_ratio_of_alt_and_ref_sequences(loaded, genome):
    sequence = genome[1000:1600]
    variants = [
        {"position": 12, "ref": sequence[12], "alt": "A" if sequence[12] != "A" else "C"},  # SNV
        {"position": 300, "ref": sequence[300:303], "alt": sequence[300]},  # deletion, VCF style
        {"position": 599, "ref": sequence[599], "alt": sequence[599] + "GATT"},  # insertion at the end
    ]
    answer = call(loaded, task="variant_effect", sequence=sequence, variants=variants)

    ref_ll = call(loaded, task="score", sequences=[sequence])["results"][0]["log_likelihood"]
    assert answer["reference_log_likelihood"] == pytest.approx(ref_ll, abs=summed_log_likelihood_atol(599))
    for variant, result in zip(variants, answer["results"], strict=True):
        position, ref, alt = variant["position"], variant["ref"], variant["alt"]
        alt_sequence = sequence[:position] + alt + sequence[position + len(ref) :]
        alt_ll = call(loaded, task="score", sequences=[alt_sequence])["results"][0]["log_likelihood"]
        alt_atol = summed_log_likelihood_atol(len(alt_sequence) - 1)
        assert result == {
            "position": position,
            "ref": ref,
            "alt": alt,
            "alt_log_likelihood": pytest.approx(alt_ll, abs=alt_atol),
            "log_likelihood_ratio": pytest.approx(
                alt_ll - ref_ll, abs=alt_atol + summed_log_likelihood_atol(599)
            ),
        }


def test_variant_effect_of_the_reference_allele_is_zero(loaded, genome):
    sequence = genome[:200]
    result = call(
        loaded,
        task="variant_effect",
        sequence=sequence,
        variants=[{"position": 5, "ref": sequence[5], "alt": sequence[5]}],
    )["results"][0]
    assert result["log_likelihood_ratio"] == 0.0


def test_lowercase_and_ambiguity_codes_score_as_uppercase_and_n(loaded):
    soft_masked = call(loaded, task="score", sequences=["acgtRYacgt"])["results"][0]
    upper = call(loaded, task="score", sequences=["ACGTNNACGT"])["results"][0]
    assert soft_masked == upper


@pytest.mark.slow  # over 5 s on a loaded 2-core machine (make test-fast skips it)
def test_generate_with_a_seed_is_reproducible_and_batched_prompt_i_uses_seed_plus_i(loaded, genome):
    prompts = [genome[:50], genome[100:130], genome[:50]]
    first = call(loaded, task="generate", sequences=prompts, max_new_tokens=12, seed=11, top_k=3)
    again = call(loaded, task="generate", sequences=prompts, max_new_tokens=12, seed=11, top_k=3)
    assert first == again
    assert first["seed"] == 11
    for index, (prompt, result) in enumerate(zip(prompts, first["results"], strict=True)):
        assert result["prompt_length"] == len(prompt)
        assert len(result["generated"]) == 12
        assert set(result["generated"]) <= set("ACGT")
        assert result["sequence"] == prompt + result["generated"]
        alone = call(loaded, task="generate", sequences=[prompt], max_new_tokens=12, seed=11 + index, top_k=3)
        assert alone["results"][0] == result
    # The same prompt twice in one request gets two different draws (seeds 11 and 13).
    assert first["results"][0]["generated"] != first["results"][2]["generated"]


def test_greedy_generation_follows_the_models_most_likely_base(loaded, genome):
    prompt = genome[:40]
    result = call(loaded, task="generate", sequences=[prompt], max_new_tokens=4, temperature=0)["results"][0]
    expected = prompt
    acgt = hyenadna.encode_dna("ACGT")
    for _ in range(4):
        with torch.no_grad():
            logits = loaded.model(torch.from_numpy(hyenadna.encode_dna(expected))[None]).logits[0, -1]
        expected += "ACGT"[int(torch.argmax(logits[acgt]))]
    assert result["sequence"] == expected
    top1 = call(loaded, task="generate", sequences=[prompt], max_new_tokens=4, top_k=1, seed=5)["results"][0]
    assert top1["sequence"] == expected
    frozen = call(loaded, task="generate", sequences=[prompt], max_new_tokens=4, temperature=1e-300, seed=5)
    assert frozen["results"][0]["sequence"] == expected


@pytest.mark.parametrize(("prompt_length", "new_tokens"), [(60, 10), (95, 3), (1, 5), (1020, 6)])
def test_greedy_generation_equals_recomputing_the_whole_sequence_for_every_base(
    loaded, genome, prompt_length, new_tokens
):
    # The endpoint continues from cached per-layer state; recomputing from scratch (each
    # sequence padded to its length bucket, as `score` runs it) must pick the same bases,
    # including across bucket boundaries (64, 96) and up to the model's max_seq_len.
    prompt = genome[3000 : 3000 + prompt_length]
    result = call(loaded, task="generate", sequences=[prompt], max_new_tokens=new_tokens, temperature=0)
    expected = prompt
    for _ in range(new_tokens):
        candidates = call(loaded, task="score", sequences=[expected + base for base in "ACGT"], per_base=True)
        next_base_scores = [r["per_base_log_likelihood"][-1] for r in candidates["results"]]
        expected += "ACGT"[int(np.argmax(next_base_scores))]
    assert result["results"][0]["sequence"] == expected


def test_generate_without_a_seed_reports_the_seed_it_drew(loaded):
    answer = call(loaded, task="generate", sequences=["ACGTACGT"], max_new_tokens=8)
    replay = call(loaded, task="generate", sequences=["ACGTACGT"], max_new_tokens=8, seed=answer["seed"])
    assert replay == answer


@pytest.mark.slow  # over 5 s on a loaded 2-core machine (make test-fast skips it)
def test_generate_samples_n_only_when_allowed(loaded):
    # At a very high temperature the distribution is nearly uniform over the allowed bases.
    hot = {"task": "generate", "sequences": ["ACGT"], "max_new_tokens": 40, "temperature": 1000.0, "seed": 1}
    assert "N" not in call(loaded, **hot)["results"][0]["generated"]
    assert "N" in call(loaded, **hot, allow_n=True)["results"][0]["generated"]
