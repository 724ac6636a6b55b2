"""The model artifact (SM_MODEL_DIR -> model.tar.gz) and fetching a model to warm-start from.

Artifact layout (docs/contracts.md), servable by the SageMaker PyTorch inference container with
nothing downloaded:

    config.json, model.safetensors      HF save_pretrained (LongSafari key names)
    tokenizer_config.json, ...          CharacterTokenizer.save_pretrained
    metrics.json, loss.png, perplexity.png
    code/inference.py (+ the endpoint modules it imports), code/hyenadna/, code/requirements.txt

The endpoint code is found next to train.py in `endpoint/` (the source bundle built by
hyenaflow/packaging.py) or in the repository's `endpoint/` folder (plain CLI runs). The model
package copied into `code/` is the `hyenadna` this process imported: the bundle's copy at its
root, or the repository's `hyenadna/`.
"""

from __future__ import annotations

import ast
import json
import shutil
import tarfile
from pathlib import Path

_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "tests", "test_*.py")


def endpoint_code_dir(train_dir: Path) -> Path:
    """The folder holding the endpoint's inference.py: `<train_dir>/endpoint` or `<train_dir>/../endpoint`."""
    for candidate in (train_dir / "endpoint", train_dir.parent / "endpoint"):
        if (candidate / "inference.py").is_file():
            return candidate
    raise SystemExit(
        f"endpoint/inference.py not found next to {train_dir} or in its parent; run train.py from the "
        "repository or from a source bundle built by hyenaflow.packaging"
    )


def inference_modules(code_dir: Path) -> list[Path]:
    """inference.py and the sibling modules it imports, transitively (e.g. dna_tasks.py; not serve.py)."""
    found, pending = {}, ["inference"]
    while pending:
        name = pending.pop()
        path = code_dir / f"{name}.py"
        if name in found or not path.is_file():
            continue
        found[name] = path
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                pending.extend(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                pending.append(node.module.split(".")[0])
    return sorted(found.values())


def write_model_artifact(model_dir: Path, model, metrics: dict, code_dir: Path) -> None:  # noqa: ANN001
    """Write the full artifact of `model` (a HyenaDNAForCausalLM) into model_dir."""
    import hyenadna
    from plots import write_training_plots

    model_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(model_dir, safe_serialization=True)
    hyenadna.CharacterTokenizer(model_max_length=model.config.max_seq_len).save_pretrained(model_dir)
    (model_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_training_plots(metrics["history"], model_dir)

    code = model_dir / "code"
    if code.exists():
        shutil.rmtree(code)
    code.mkdir()
    for module in inference_modules(code_dir):
        shutil.copy2(module, code / module.name)
    shutil.copytree(Path(hyenadna.__file__).resolve().parent, code / "hyenadna", ignore=_IGNORE)
    # What the inference container pip-installs on top of its own torch (endpoint/requirements.txt).
    shutil.copy2(code_dir / "requirements.txt", code / "requirements.txt")


def fetch_model_dir(source: str, scratch: Path) -> Path:
    """A local directory holding config.json + weights, from a folder, a model.tar.gz, or s3:// of either."""
    scratch.mkdir(parents=True, exist_ok=True)
    if source.startswith("s3://"):
        import boto3

        bucket, _, key = source.removeprefix("s3://").partition("/")
        s3 = boto3.client("s3")
        if key.endswith(".tar.gz"):
            local = scratch / "model.tar.gz"
            s3.download_file(bucket, key, str(local))
            source = str(local)
        else:
            prefix = key.rstrip("/") + "/" if key else ""
            target = scratch / "model"
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    relative = item["Key"][len(prefix) :]
                    if relative and not relative.endswith("/"):
                        (target / relative).parent.mkdir(parents=True, exist_ok=True)
                        s3.download_file(bucket, item["Key"], str(target / relative))
            source = str(target)
    path = Path(source)
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        target = scratch / "extracted"
        with tarfile.open(path) as archive:
            archive.extractall(target, filter="data")
        path = target
    if not (path / "config.json").is_file():
        raise SystemExit(f"--init-from {source}: no config.json there; expected a HyenaDNA model directory")
    return path
