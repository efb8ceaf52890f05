"""Every README / docs snippet is well formed: Python blocks compile and define every name they use;
bash blocks parse, and each `tritonstack ...` line names a real command with real options.

Running the Python blocks against a real server is tests/integration/test_readme_snippets.py.
"""

from __future__ import annotations

import ast
import builtins
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "docs/operating.md")
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def snippets(language: str) -> list[tuple[str, str]]:
    """(where, code) of every fenced block in `language` in the documentation files."""
    found = []
    for name in DOCS:
        text = (ROOT / name).read_text()
        for match in _FENCE.finditer(text):
            if match.group(1) == language:
                found.append((f"{name}:{text[:match.start()].count(chr(10)) + 1}", match.group(2)))
    return found


def _undefined_names(code: str) -> set[str]:
    """Names a snippet reads but never binds (imports, assignments, with/for targets, defs)."""
    tree = ast.parse(code)
    bound, used = set(dir(builtins)), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return used - bound


def test_python_snippets_define_every_name_they_use() -> None:
    blocks = snippets("python")
    assert blocks, "the README has a Python example"
    for where, code in blocks:
        assert not _undefined_names(code), f"{where} uses undefined names {sorted(_undefined_names(code))}"


def test_the_check_catches_an_undefined_name() -> None:
    assert _undefined_names("import numpy as np\nx = np.ones(3)\ny = model(x, features)") == {"model", "features"}


@pytest.mark.parametrize(("where", "code"), snippets("bash"))
def test_bash_snippets_parse(where: str, code: str) -> None:
    done = subprocess.run(["bash", "-n"], input=code, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"{where}: {done.stderr}"


def _tritonstack_lines(code: str) -> list[list[str]]:
    """Each `tritonstack ...` command of a bash block, as argv (continuations joined, comments cut)."""
    joined = code.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines()
            if line.strip().startswith("tritonstack ")]


def _resolve(argv: list[str]):  # noqa: ANN202
    """The click command an argv names, and the options it was given."""
    import typer.main

    from tritonstack.cli import _register, app

    _register()
    command, words = typer.main.get_command(app), argv[1:]
    while words and hasattr(command, "commands") and not words[0].startswith("-"):
        assert words[0] in command.commands, f"`{' '.join(argv)}`: no command {words[0]!r}"
        command, words = command.commands[words[0]], words[1:]
    return command, [w.split("=")[0] for w in words if w.startswith("--")]


def test_every_documented_tritonstack_command_and_option_exists() -> None:
    checked = 0
    for where, code in snippets("bash"):
        for argv in _tritonstack_lines(code):
            command, options = _resolve(argv)
            known = {o for p in command.params for o in [*p.opts, *p.secondary_opts]}
            known |= {"--log-json", "--log-level"}  # the app's own options
            assert set(options) <= known, f"{where}: `{' '.join(argv)}` has no {set(options) - known}"
            assert not hasattr(command, "commands"), f"{where}: `{' '.join(argv)}` names a group"
            checked += 1
    print(f"{checked} documented tritonstack commands resolve to real commands and options")
    assert checked >= 10
