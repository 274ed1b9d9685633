"""The model core is plain Python: the web stack never leaks into it."""

from __future__ import annotations

import ast
from pathlib import Path

import llm

WEB_STACK = {"django", "channels", "celery"}
LLM_ROOT = Path(llm.__file__).parent


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


def test_it_finds_the_llm_sources():
    """The walk really covers the package (a broken path would pass vacuously)."""
    names = {path.relative_to(LLM_ROOT).as_posix() for path in LLM_ROOT.rglob("*.py")}
    assert {"loading.py", "sampling.py", "engine/local.py", "engine/batch.py"} <= names


def test_it_keeps_django_channels_and_celery_out_of_llm():
    """No module under llm/ imports the web stack, directly or through importlib."""
    offenders = {
        path.relative_to(LLM_ROOT).as_posix(): sorted(imported_roots(path) & WEB_STACK)
        for path in LLM_ROOT.rglob("*.py")
    }
    assert {name: roots for name, roots in offenders.items() if roots} == {}


def test_it_detects_a_forbidden_import(tmp_path):
    """The checker itself sees every spelling of an import."""
    source = tmp_path / "bad.py"
    source.write_text(
        "import os\n"
        "from django.conf import settings\n"
        "def f():\n"
        "    import channels.layers\n"
        "    return importlib.import_module('celery')\n"
    )
    assert imported_roots(source) & WEB_STACK == WEB_STACK
