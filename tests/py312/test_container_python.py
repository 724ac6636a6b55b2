"""The training and inference code on the containers' Python (3.12), the parts that need no torch.

`make test-py312` runs this folder with python3.12 in .venv-py312 (pytest only; the main suite
runs it on 3.11 too). Proven on 3.12 by it: every module of training_job/, endpoint/ and
hyenadna/ compiles; everything they import from the standard library exists there; every other
import comes from the image or from our requirements files; the DNA alphabet (standard library
only) works; the training bundle is built and the artifact's code/ is picked from it. Not
proven on 3.12: anything that imports torch or transformers (the model, train.py's loop, the
inference handler); PyPI's torch for Linux is the CUDA build, too big for CI (docs/deploy.md).

Standard library, pytest and the repository's stdlib-only modules only: no numpy, no torch.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONTAINER_CODE = ("training_job", "endpoint", "hyenadna")
# Third-party imports and where the containers get them: the AWS PyTorch images carry torch,
# numpy and boto3 (and the inference toolkit); our requirements files add the rest.
FROM_THE_IMAGE = {"torch", "numpy", "boto3", "sagemaker_inference"}
REQUIREMENTS = {
    "transformers": "transformers",
    "safetensors": "safetensors",
    "matplotlib": "matplotlib",
    "tqdm": "tqdm",
    "tensorboard": "tensorboard",
    "Bio": "biopython",  # training_job/sequence_files.py, for GenBank/EMBL inputs only
}


def _modules() -> list[Path]:
    return sorted(
        p for folder in CONTAINER_CODE for p in (REPO / folder).rglob("*.py") if "__pycache__" not in p.parts
    )


def _top_level_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names - {"__future__"}


def _pins(requirements: Path) -> set[str]:
    lines = (line.split("#", 1)[0].strip() for line in requirements.read_text().splitlines())
    return {line.partition("==")[0].lower() for line in lines if line}


def test_this_is_the_python_the_checks_are_for() -> None:
    assert sys.version_info[:2] in ((3, 11), (3, 12)), sys.version  # 3.12: the containers; 3.11: the suite


def test_every_module_compiles_on_this_python() -> None:
    for path in _modules():
        compile(path.read_text(), str(path), "exec", dont_inherit=True)


def test_standard_library_imports_exist_and_the_rest_comes_from_the_image_or_our_requirements() -> None:
    first_party = {p.stem for p in _modules()} | {"hyenadna"}
    third_party: dict[str, set[str]] = {}
    for path in _modules():
        for name in _top_level_imports(path) - first_party:
            if name not in sys.stdlib_module_names:
                third_party.setdefault(name, set()).add(str(path.relative_to(REPO)))
    assert set(third_party) <= FROM_THE_IMAGE | set(REQUIREMENTS), third_party
    training = _pins(REPO / "training_job" / "requirements.txt")
    endpoint = _pins(REPO / "endpoint" / "requirements.txt")
    for name, users in third_party.items():
        if name in FROM_THE_IMAGE:
            continue
        needed_by_endpoint = any(user.startswith(("endpoint/", "hyenadna/")) for user in users)
        assert REQUIREMENTS[name] in training, f"{name} ({sorted(users)}) is in no requirements file"
        if needed_by_endpoint:
            assert REQUIREMENTS[name] in endpoint, f"{name} is imported by {sorted(users)}"


def _load_standalone(path: Path, name: str):  # noqa: ANN202 - a module
    """`path` as a module of its own, without its package's __init__ (which imports torch)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_the_dna_alphabet_runs_on_this_python() -> None:
    alphabet = _load_standalone(REPO / "hyenadna" / "alphabet.py", "alphabet_on_this_python")
    assert alphabet.NUCLEOTIDE_IDS == {"A": 7, "C": 8, "G": 9, "T": 10, "N": 11}
    assert alphabet.normalize_bases(b"acgtRYn") == b"ACGTNNN"
    assert alphabet.first_invalid_position(b"ACGTU") == 4


def test_the_training_bundle_is_built_and_the_artifact_code_picked_from_it_on_this_python(
    tmp_path: Path,
) -> None:
    packaging = _load_standalone(REPO / "hyenaflow" / "packaging.py", "packaging_on_this_python")
    bundle = tmp_path / "sourcedir.tar.gz"
    packaging.build_training_bundle(bundle, repo_root=REPO)
    with tarfile.open(bundle) as archive:
        archive.extractall(tmp_path / "src", filter="data")
    probe = (
        "import sys; from pathlib import Path; sys.path.insert(0, '.');"
        "from training_artifact import endpoint_code_dir, inference_modules;"
        "print(sorted(p.name for p in inference_modules(endpoint_code_dir(Path('.').resolve()))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path / "src", capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    modules = out.stdout.strip()
    assert "'inference.py'" in modules and "'serve.py'" not in modules
    assert (tmp_path / "src" / "endpoint" / "requirements.txt").is_file()  # what the artifact's code/ gets
