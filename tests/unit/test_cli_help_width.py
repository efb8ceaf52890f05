"""Every command's and subcommand's --help reads whole on an 80-column terminal (issue 13 item 6):
no option name, default or env var is cut with '…'."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parents[2]


def _command_paths() -> list[list[str]]:
    """The words of every command and subcommand of `tritonstack`, from the app itself."""
    from tritonstack.cli import _register, app

    _register()
    paths, todo = [], [([], typer.main.get_command(app))]
    while todo:
        words, command = todo.pop()
        paths.append(words)
        if hasattr(command, "commands"):  # a group (typer vendors its own click)
            todo.extend(([*words, name], sub) for name, sub in command.commands.items())
    return sorted(paths)


def test_every_help_reads_whole_at_80_columns() -> None:
    paths = _command_paths()
    assert ["serve"] in paths and ["versions", "add"] in paths and ["tune"] in paths
    env = {**os.environ, "COLUMNS": "80", "PYTHONPATH": str(ROOT)}
    script = ("import sys\nfrom tritonstack.cli import main\n"
              "for words in sys.argv[1:]:\n"
              "    try:\n        main([*words.split(), '--help'])\n    except SystemExit:\n        pass\n"
              "    print('\\n=====')\n")
    done = subprocess.run([sys.executable, "-c", script, *(" ".join(p) for p in paths)], capture_output=True,
                          text=True, timeout=240, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    pages = done.stdout.split("\n=====")[:-1]
    print(f"{len(pages)} help pages, widest line {max(map(len, done.stdout.splitlines()))} columns")
    assert len(pages) == len(paths)
    for words, page in zip(paths, pages, strict=True):
        assert "Usage:" in page, words
        assert "…" not in page, (words, [line for line in page.splitlines() if "…" in line])
    assert "TRITONSTACK_ADMIN_KEY" in done.stdout and "max_queue_delay_microseconds" in done.stdout
