"""hyenadna/ stands alone: its imports, and a copy of the folder alone serving the reference checkpoint."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "hyenadna"
REFERENCE = REPO / "tests" / "fixtures" / "hyenadna"
THIRD_PARTY = {"torch", "transformers", "safetensors", "numpy"}


def top_level_imports(path: Path) -> set[str]:
    """First components of the absolute imports of a module (relative imports stay in the package)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_package_imports_only_torch_transformers_safetensors_numpy_and_the_standard_library():
    for module in sorted(PACKAGE.glob("*.py")):
        foreign = top_level_imports(module) - THIRD_PARTY - set(sys.stdlib_module_names) - {"hyenadna"}
        assert not foreign, f"{module.relative_to(REPO)} imports {sorted(foreign)}"


def test_alphabet_runs_on_the_standard_library_alone(tmp_path):
    # As the Lambdas get it: the file on its own under another name, no site-packages at all (-S).
    shutil.copy2(PACKAGE / "alphabet.py", tmp_path / "dna_alphabet.py")
    probe = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import dna_alphabet;"
        "print(dna_alphabet.normalize_bases(b'acgtR\\n').decode(), dna_alphabet.PAD_ID)"
    )
    out = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ACGTN", "4"]


@pytest.mark.slow  # over 5 s on a loaded 2-core machine (make test-fast skips it)
def test_package_copied_alone_loads_the_reference_checkpoint_and_reproduces_its_logits(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "hyenadna", ignore=shutil.ignore_patterns("__pycache__"))
    # -I: no PYTHONPATH, no working directory, no user site; only the copy and site-packages.
    probe = f"""
import json, sys
sys.path.insert(0, {str(tmp_path)!r})
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
import hyenadna

model = AutoModelForCausalLM.from_pretrained({str(REFERENCE / "tiny_reference")!r}).eval()
io = load_file({str(REFERENCE / "tiny_reference_io.safetensors")!r})
with torch.no_grad():
    logits = model(io["input_ids"]).logits
repo, venv = Path({str(REPO)!r}), Path(sys.prefix).resolve()  # the venv may live in the repository
from_repo = sorted(
    name for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None)
    and Path(module.__file__).resolve().is_relative_to(repo)
    and not Path(module.__file__).resolve().is_relative_to(venv)
)
print(json.dumps({{
    "package": str(Path(hyenadna.__file__).resolve().parent),
    "model_class": type(model).__module__ + "." + type(model).__name__,
    "max_abs_diff": float((logits - io["logits"]).abs().max()),
    "modules_from_the_repository": from_repo,
}}))
"""
    out = subprocess.run([sys.executable, "-I", "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.splitlines()[-1])
    assert Path(result["package"]) == (tmp_path / "hyenadna").resolve()
    assert result["model_class"] == "hyenadna.modeling_hyenadna.HyenaDNAForCausalLM"
    assert result["modules_from_the_repository"] == []
    assert result["max_abs_diff"] <= 1e-4  # the tolerance of the in-repository parity test
