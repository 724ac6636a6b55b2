"""hyenaflow/packaging.py: the training source bundle SageMaker and the local stack run."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from hyenaflow.packaging import build_training_bundle

REPO = Path(__file__).resolve().parents[2]


def test_bundle_has_the_entry_point_model_package_and_endpoint_code(tmp_path):
    bundle = tmp_path / "sourcedir.tar.gz"
    build_training_bundle(bundle)
    with tarfile.open(bundle) as archive:
        names = set(archive.getnames())
    assert {
        "train.py",
        "sequence_data.py",
        "evaluation.py",
        "training_artifact.py",
        "plots.py",
        "requirements.txt",
        "endpoint/inference.py",
        "endpoint/requirements.txt",  # what the inference container installs: copied into the artifact
    } <= names
    # The model package sits at the bundle root, whole: SageMaker puts the bundle on sys.path.
    assert {n for n in names if n.startswith("hyenadna/")} == {
        f"hyenadna/{p.name}" for p in (REPO / "hyenadna").glob("*.py")
    }
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_same_sources_give_the_same_bytes(tmp_path):
    assert build_training_bundle(tmp_path / "a.tar.gz") == build_training_bundle(tmp_path / "b.tar.gz")
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()


@pytest.mark.slow  # over 5 s on a loaded 2-core machine (make test-fast skips it)
def test_bundle_runs_from_its_extracted_folder(tmp_path):
    """The extracted bundle finds the endpoint code next to train.py, and its own hyenadna, as in SageMaker."""
    import subprocess
    import sys

    bundle = tmp_path / "sourcedir.tar.gz"
    build_training_bundle(bundle)
    with tarfile.open(bundle) as archive:
        archive.extractall(tmp_path / "src", filter="data")
    probe = (
        "import sys; from pathlib import Path; sys.path.insert(0, '.');"
        "from training_artifact import endpoint_code_dir, inference_modules;"
        "print(sorted(p.name for p in inference_modules(endpoint_code_dir(Path('.').resolve()))));"
        "import hyenadna; print(Path(hyenadna.__file__).resolve().parent)"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path / "src", capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    modules, model_package = out.stdout.splitlines()
    assert "inference.py" in modules and "serve.py" not in modules
    assert Path(model_package) == (tmp_path / "src" / "hyenadna").resolve()
