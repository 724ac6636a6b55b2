"""Imports point one way: no group of modules imports each other, in any part of the project.

A cycle means two modules are one concept split in two, or a lower layer reaching up (the local
AWS server once imported the HealthOmics and SageMaker emulations, which imported it back).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.import_graph import import_cycles, import_graph

REPO_ROOT = Path(__file__).resolve().parents[2]
# Each part with its import root, as it runs: hyenaflow and hyenadna from the repository root;
# functions/, training_job/ and endpoint/ are roots of their own (Lambda's /var/task,
# SageMaker's code dir; see pyproject's pythonpath).
PARTS = {
    "hyenaflow": (REPO_ROOT, "hyenaflow"),
    "hyenadna": (REPO_ROOT, "hyenadna"),
    "functions": (REPO_ROOT / "functions", None),
    "training_job": (REPO_ROOT / "training_job", None),
    "endpoint": (REPO_ROOT / "endpoint", None),
}


@pytest.mark.parametrize("part", PARTS)
def test_no_modules_of_a_part_import_each_other(part: str) -> None:
    import_root, package = PARTS[part]

    cycles = import_cycles(import_graph(import_root, package))

    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_cycle_through_a_lazy_or_relative_import_is_found(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/server.py": "def start():\n    from app.emulation import Emulation\n",
            "app/emulation/__init__.py": "from .models import Backend\n",
            "app/emulation/models.py": "from app import server\n",
            "app/plain.py": "import app.server\n",
        },
    )

    cycles = import_cycles(import_graph(tmp_path, "app"))

    assert cycles == [["app.emulation", "app.emulation.models", "app.server", "app.emulation"]]


def test_importing_a_submodule_is_no_edge_to_its_parent_package(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "app/__init__.py": "from app.server import start\n",
            "app/server.py": "from app import account\nfrom app.account import ACCOUNT_ID\n",
            "app/account.py": "ACCOUNT_ID = '1'\n",
        },
    )

    graph = import_graph(tmp_path, "app")

    assert graph == {"app": {"app.server"}, "app.server": {"app.account"}, "app.account": set()}
    assert import_cycles(graph) == []
