"""The Lambda package's layout: thin function folders over one shared package, imports pointing down.

functions/ is one package (`CodeUri: functions/`): each function folder holds its handler and its
event models, everything else lives in functions/pipeline/. A function folder never imports
another one, the shared package never imports a function folder, and nothing in it imports
more than the standard library, boto3/botocore, Powertools and pydantic.
"""

from __future__ import annotations

import ast
import filecmp
import sys
from pathlib import Path

import pytest

from hyenaflow.local.template import load_template

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO / "functions"
SHARED = "pipeline"
TEMPLATE = load_template(REPO / "template.yaml")
SERVERLESS_FUNCTIONS = {
    name: resource
    for name, resource in TEMPLATE["Resources"].items()
    if resource["Type"] == "AWS::Serverless::Function"
}
FUNCTION_FOLDERS = sorted({r["Properties"]["Handler"].split(".")[0] for r in SERVERLESS_FUNCTIONS.values()})
ALLOWED_THIRD_PARTY = {"boto3", "botocore", "aws_lambda_powertools", "pydantic"}
# Allowed beyond those in one module each: ISA-L's gzip for the staged tiles (zlib is the fallback)
# and Biopython's GenBank/EMBL scanner, imported inside the flat-file reader only.
ALLOWED_IN_ONE_MODULE = {"isal": "pipeline/ingest/staging.py", "Bio": "pipeline/sequence_files.py"}
HEAVY = {"torch", "transformers", "numpy", "sagemaker"}


def _modules() -> list[Path]:
    return sorted(path for path in FUNCTIONS.rglob("*.py") if "__pycache__" not in path.parts)


def _imports(path: Path) -> set[str]:
    return _imported_names(path.read_text(), package=path.relative_to(FUNCTIONS).parent.parts)


def _imported_names(source: str, package: tuple[str, ...]) -> set[str]:
    """Dotted names of everything `source` imports, relative imports resolved against `package`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            module = ".".join([*base, *([node.module] if node.module else [])])
            names |= {module} if node.module else {f"{module}.{alias.name}" for alias in node.names}
    return names


def _top_levels(path: Path) -> set[str]:
    return {name.split(".")[0] for name in _imports(path)}


def test_every_function_runs_a_handler_module_of_the_one_lambda_package() -> None:
    global_code = TEMPLATE["Globals"]["Function"]["CodeUri"]
    for name, function in SERVERLESS_FUNCTIONS.items():
        properties = function["Properties"]
        assert properties.get("CodeUri", global_code) == "functions/", name
        folder = properties["Handler"].split(".")[0]
        assert properties["Handler"] == f"{folder}.handler.lambda_handler", name
        assert (FUNCTIONS / folder / "handler.py").is_file(), name
    assert set(FUNCTION_FOLDERS) == {
        "ingest_fasta",
        "poll_genbank",
        "start_training",
        "deploy_model",
        "reconcile",
    }


def test_function_folders_hold_only_their_handler_and_event_models() -> None:
    packages = {p.name for p in FUNCTIONS.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert packages == {*FUNCTION_FOLDERS, SHARED}, "shared code belongs in functions/pipeline/"
    for folder in FUNCTION_FOLDERS:
        files = {p.name for p in (FUNCTIONS / folder).iterdir() if p.name != "__pycache__"}
        assert files <= {"__init__.py", "handler.py", "models.py"}, f"{folder}: {sorted(files)}"


def test_no_function_folder_imports_another_function_folder() -> None:
    for folder in FUNCTION_FOLDERS:
        for path in (FUNCTIONS / folder).rglob("*.py"):
            others = _top_levels(path) & (set(FUNCTION_FOLDERS) - {folder})
            assert not others, (
                f"{path.relative_to(REPO)} imports {sorted(others)}: share it through {SHARED}/"
            )


def test_the_shared_package_imports_no_function_folder() -> None:
    for path in (FUNCTIONS / SHARED).rglob("*.py"):
        upward = _top_levels(path) & set(FUNCTION_FOLDERS)
        assert not upward, f"{path.relative_to(REPO)} imports {sorted(upward)}: imports point down"


def test_lambda_code_imports_only_the_standard_library_boto3_powertools_and_pydantic() -> None:
    first_party = {*FUNCTION_FOLDERS, SHARED}
    for path in _modules():
        top = _top_levels(path) - {"__future__"}
        assert not top & HEAVY, f"{path.relative_to(REPO)} imports {sorted(top & HEAVY)}"
        here = {name for name, module in ALLOWED_IN_ONE_MODULE.items() if path == FUNCTIONS / module}
        unexpected = top - first_party - ALLOWED_THIRD_PARTY - here - set(sys.stdlib_module_names)
        assert not unexpected, f"{path.relative_to(REPO)} imports {sorted(unexpected)}"


def test_the_import_scan_sees_relative_absolute_and_nested_imports() -> None:
    source = (
        "from ..deploy_model import handler\n"
        "import start_training.models\n"
        "from . import models\n"
        "def f():\n    from pipeline.genbank import poller\n"
    )
    names = _imported_names(source, package=("reconcile",))
    assert names == {"deploy_model", "start_training.models", "reconcile.models", "pipeline.genbank"}


def test_helpers_only_tests_use_do_not_ship_in_the_lambda_package() -> None:
    test_only = {"tile_name", "parse_tile_name", "record_to_fastq", "records_to_fastq"}  # tests/support/
    for path in _modules():
        defined = {
            node.name
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.FunctionDef | ast.ClassDef)
        }
        assert not defined & test_only, f"{path.relative_to(REPO)} defines {sorted(defined & test_only)}"


# -- files shared with the training side through symlinks: the alphabet, the sequence formats ----

SHARED_FILES = {  # Lambda module -> the one file it is
    "dna_alphabet.py": Path("../../hyenadna/alphabet.py"),
    "sequence_files.py": Path("../../training_job/sequence_files.py"),
}


@pytest.mark.parametrize("name", sorted(SHARED_FILES))
def test_files_shared_with_training_are_relative_links(name: str) -> None:
    link = FUNCTIONS / SHARED / name
    assert link.is_symlink()
    assert link.readlink() == SHARED_FILES[name]  # relative: survives any checkout path
    assert link.resolve() == (FUNCTIONS / SHARED / SHARED_FILES[name]).resolve()
    assert (link.parent / SHARED_FILES[name]).resolve().is_file()


def test_the_linked_alphabet_loads_as_a_module_of_the_lambda_package() -> None:
    # The local Lambda runtime gives each function its own copy of every module whose spec says
    # it lives under functions/; the symlinked file must be one of them, not hyenadna's.
    import pipeline.dna_alphabet as alphabet

    assert alphabet.__spec__ is not None and alphabet.__spec__.origin is not None
    assert Path(alphabet.__spec__.origin) == FUNCTIONS / SHARED / "dna_alphabet.py"


@pytest.mark.slow
def test_sam_build_copies_the_shared_files_into_every_function_package() -> None:
    """Checks the output of `make build` (sam build); skipped when there is none."""
    build = REPO / ".aws-sam" / "build"
    if not build.is_dir():
        pytest.skip("no .aws-sam/build: run `make build` first")
    for name in SERVERLESS_FUNCTIONS:
        for module, target in SHARED_FILES.items():
            source = (FUNCTIONS / SHARED / target).resolve()
            packaged = build / name / SHARED / module
            assert packaged.is_file() and not packaged.is_symlink(), (
                f"{name}: {packaged} is not a regular file"
            )
            assert filecmp.cmp(packaged, source, shallow=False), (
                f"{name}: {packaged} differs from {source} (a build from before the last change? `make build`)"
            )


# The bytecode of the functions' runtime, python3.12 (template.yaml): its cache tag and the magic
# number its .pyc start with (3531 for 3.12, importlib.util.MAGIC_NUMBER there). A .pyc of another
# Python is ignored, and Lambda compiles the source again at every cold start.
RUNTIME_CACHE_TAG = "cpython-312"
RUNTIME_PYC_MAGIC = (3531).to_bytes(2, "little") + b"\r\n"


@pytest.mark.slow
def test_make_build_ships_bytecode_that_lambda_uses_without_checking_sources() -> None:
    """Checks the output of `make build`; skipped when there is none. Lambda cannot write
    __pycache__ (read-only /var/task), so the packages carry unchecked-hash .pyc for Python 3.12."""
    build = REPO / ".aws-sam" / "build"
    if not build.is_dir():
        pytest.skip("no .aws-sam/build: run `make build` first")
    for name in SERVERLESS_FUNCTIONS:
        package = build / name
        for module in ("pipeline/observability.py", "botocore/client.py", "pydantic/main.py"):
            source = package / module
            cached = source.parent / "__pycache__" / f"{source.stem}.{RUNTIME_CACHE_TAG}.pyc"
            assert cached.is_file(), (
                f"{name}: no {cached.relative_to(package)} (run `make build`, not `sam build`)"
            )
            header = cached.read_bytes()[:8]
            assert header[:4] == RUNTIME_PYC_MAGIC, f"{cached}: not Python 3.12 bytecode"
            flags = int.from_bytes(header[4:8], "little")
            assert flags == 0b01, f"{cached}: not an unchecked-hash .pyc (flags {flags:#b})"
        assert not (package / "numpy").exists(), f"{name}: numpy is in the package but no Lambda imports it"
    # Every package and the Biopython layer: compiled extensions for the runtime's Python on arm64
    for package in [build / name for name in SERVERLESS_FUNCTIONS] + [build / "BiopythonLayer" / "python"]:
        compiled_extensions = {path.name for path in package.rglob("*.so")}
        assert compiled_extensions, f"{package}: no compiled extension (pydantic_core? Bio?)"
        assert all(f"{RUNTIME_CACHE_TAG}-aarch64" in so for so in compiled_extensions), (
            f"{package}: extensions for another Python or architecture: {sorted(compiled_extensions)}"
        )
    scanner = build / "BiopythonLayer" / "python" / "Bio" / "GenBank" / "__pycache__"
    assert (scanner / f"Scanner.{RUNTIME_CACHE_TAG}.pyc").read_bytes()[:4] == RUNTIME_PYC_MAGIC


def _build() -> Path:
    build = REPO / ".aws-sam" / "build"
    if not build.is_dir():
        pytest.skip("no .aws-sam/build: run `make build` first")
    return build


@pytest.mark.slow
def test_make_build_puts_biopython_in_the_ingest_layer_alone_without_numpy() -> None:
    """Checks the output of `make build`; skipped when there is none. The function packages are
    back to their size before Biopython (docs/benchmarks.md "Package size")."""
    build = _build()
    layer = build / "BiopythonLayer" / "python"  # /opt/python in Lambda, on sys.path
    assert (layer / "Bio" / "GenBank" / "Scanner.py").is_file()
    assert not list(layer.glob("numpy*")), "numpy is in the layer but no Lambda imports it"
    for name in SERVERLESS_FUNCTIONS:
        shipped = {path.name for path in (build / name).iterdir()}
        assert not {"Bio", "numpy"} & shipped, f"{name}: Biopython belongs in its layer only"
    built = load_template(build / "template.yaml")["Resources"]
    assert built["IngestFastaFunction"]["Properties"]["Layers"] == [{"Ref": "BiopythonLayer"}]


@pytest.mark.slow
def test_the_built_ingest_package_reads_a_genbank_file_with_its_layer(tmp_path: Path) -> None:
    """The ingest package plus the layer, as Lambda puts them on sys.path (no other site-packages),
    parse a GenBank file, and numpy is never imported (it is not there)."""
    import json
    import subprocess

    build = _build()
    probe = (
        "import json, sys\n"
        "from pipeline.sequence_files import read_flat_file, text_lines\n"
        "with open(sys.argv[1], 'rb') as f:\n"
        "    records = list(read_flat_file(text_lines(f), 'genbank'))\n"
        "print(json.dumps([[r.record_id, len(r.sequence)] for r in records]))\n"
    )
    path = f"{build / 'IngestFastaFunction'}:{build / 'BiopythonLayer' / 'python'}"
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe, str(REPO / "tests/fixtures/flatfiles/NC_005816.gb")],
        env={"PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [["NC_005816.1", 9609]]
