"""Imports point one way: live → {training, feedback, documents, chat, llm}; training →
feedback → documents → chat → llm; llm imports none of them and no web stack. config
sits above all."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Lowest first: a package may import those before it, never those after it.
LAYERS = ["llm", "chat", "documents", "feedback", "training", "live"]
WEB_STACK = {"django", "channels", "celery"}
OURS = {*LAYERS, "config"}


def imported_roots(source: Path) -> set[str]:
    """Top-level package names that ``source`` imports, however it spells it."""
    roots = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            roots.add(node.args[0].value.split(".")[0])
    return roots


def _is_dynamic_import(node: ast.Call) -> bool:
    name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
    return (
        name in ("import_module", "__import__")
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def forbidden_imports(root: Path) -> dict[str, list[str]]:
    """Each module under ``root``'s layer packages, with what it may not import."""
    offenders = {}
    for rank, package in enumerate(LAYERS):
        allowed = {package, *LAYERS[:rank]}
        banned = (OURS - allowed) | (WEB_STACK if package == "llm" else set())
        for path in sorted((root / package).rglob("*.py")):
            wrong = sorted(imported_roots(path) & banned)
            if wrong:
                offenders[path.relative_to(root).as_posix()] = wrong
    return offenders


def test_it_walks_every_layer():
    """The walk really covers each package (a broken path would pass vacuously)."""
    for package, expected in [
        ("llm", "engine/local.py"),
        ("chat", "services.py"),
        ("documents", "services.py"),
        ("feedback", "services.py"),
        ("training", "pipeline.py"),
        ("live", "consumers.py"),
    ]:
        assert (REPO / package / expected).exists()
        assert len(list((REPO / package).rglob("*.py"))) > 1


def test_every_import_points_down_the_layers():
    assert forbidden_imports(REPO) == {}


@pytest.mark.parametrize(
    ("package", "source", "wrong"),
    [
        ("chat", "from feedback.models import Rating\n", ["feedback"]),
        ("chat", "def f():\n    import live.consumers\n", ["live"]),
        ("feedback", "from training.services import serving_for\n", ["training"]),
        ("training", "import importlib\nimportlib.import_module('live.replies')\n", ["live"]),
        ("llm", "from chat.models import Message\n", ["chat"]),
        ("llm", "from django.conf import settings\n", ["django"]),
        ("live", "from config.settings import DEBUG\n", ["config"]),
    ],
)
def test_it_catches_an_import_that_points_up(tmp_path, package, source, wrong):
    """The checker fails on a deliberately wrong import, whatever its spelling."""
    for name in LAYERS:
        (tmp_path / name).mkdir()
    (tmp_path / package / "wrong.py").write_text(source)
    assert forbidden_imports(tmp_path) == {f"{package}/wrong.py": wrong}


def test_it_allows_imports_down_the_layers(tmp_path):
    for name in LAYERS:
        (tmp_path / name).mkdir()
    (tmp_path / "live" / "fine.py").write_text(
        "from chat.models import Message\nfrom training.services import serving_for\n"
        "from llm.engine.base import Engine\nfrom django.conf import settings\n"
    )
    (tmp_path / "training" / "fine.py").write_text("from feedback.exports import pair_rows\n")
    assert forbidden_imports(tmp_path) == {}
