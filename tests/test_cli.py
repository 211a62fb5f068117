"""Every ``iacs`` command imports and answers ``--help``: a broken import fails CI, not production.

Two checks: each command (walked from the click group, so a new one is covered without a new
row) runs ``--help`` through click's ``CliRunner``; and every name that ``iacs/cli.py`` imports,
at the top or inside a command, exists, since ``--help`` never runs a command's body.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import iacs.cli
from iacs.cli import main


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under ``group``, groups included (``()`` is ``iacs`` itself)."""
    paths = [path]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            paths += _commands(command, (*path, name))
        else:
            paths.append((*path, name))
    return paths


def _imported_names() -> list[str]:
    """``module.name`` for each ``from module import name`` anywhere in ``iacs/cli.py``."""
    tree = ast.parse(Path(iacs.cli.__file__).read_text())
    return sorted(
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
        if node.module != "__future__"
        for alias in node.names
    )


COMMANDS = _commands(main)


def test_the_cli_has_its_commands():
    names = {" ".join(path) for path in COMMANDS}
    for expected in ("dev", "keycloak apply", "sync once", "sync run", "portal serve"):
        assert expected in names
    assert {"maintenance", "directory serve", "bench", "settings"} <= names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "iacs")
def test_each_command_answers_help(path: tuple[str, ...]):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize("qualified", _imported_names())
def test_each_name_the_cli_imports_exists(qualified: str):
    module_name, _, name = qualified.rpartition(".")
    module = importlib.import_module(module_name)
    assert hasattr(module, name), f"{module_name} has no {name}"
