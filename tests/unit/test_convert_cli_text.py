"""`tritonstack convert` reads whole on an 80-column terminal; the table shows what each check judged;
model-loading messages name the cause and the fix (issue 13 items 14 and 15)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tritonstack.convert.verify import run_onnx

from .convert_models import mlp_onnx

ROOT = Path(__file__).resolve().parents[2]
LONG = "two_input_classifier_model"


def _run(*args: object, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "80", "PYTHONPATH": str(cwd)}
    return subprocess.run([sys.executable, "-m", "tritonstack", "convert", *map(str, args)], capture_output=True,
                          text=True, timeout=240, cwd=cwd, env=env)


def test_help_reads_whole_at_80_columns_and_shows_the_syntax() -> None:
    done = _run("--help")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "…" not in done.stdout and max(map(len, done.stdout.splitlines())) <= 80
    for needle in ("--calibration-method", "--preferred-batch-size", "-1 marks a dynamic axis",
                   "tokens:INT64:-1", "on PYTHONPATH", "--weights", "MIN_COSINE", "--queue-timeout-us"):
        assert needle in text, needle


def test_table_reads_whole_and_labels_the_int8_figures(tmp_path: Path) -> None:
    model = mlp_onnx(tmp_path / "m.onnx")
    rng = np.random.default_rng(0)
    np.save(tmp_path / "calib.npy", rng.standard_normal((32, 4)).astype(np.float32))
    holdout = rng.standard_normal((64, 4)).astype(np.float32)
    np.savez(tmp_path / "holdout.npz", x=holdout, labels=run_onnx(model, {"x": holdout})["y"].argmax(1))
    done = _run(model, "--name", LONG, "--repository", tmp_path / "repo", "--workdir", tmp_path / "build",
                "--precision", "fp32,int8", "--calibration", tmp_path / "calib.npy", "--holdout",
                tmp_path / "holdout.npz", "--budget", "0.5", "--no-progress")
    assert done.returncode == 0, done.stderr
    print(done.stdout)
    table = [line for line in done.stdout.splitlines() if line[:1] in "┏┃┡│└"]
    assert "…" not in done.stdout and table and max(map(len, table)) <= 80  # notes wrap in the terminal
    rows = {row[0]: row for row in _rows(table)}  # cells without spaces, folded lines joined
    assert set(rows) == {LONG, f"{LONG}_int8"}
    assert rows[f"{LONG}_int8"][3].startswith("gateon64held-outsamples:top1")
    assert rows[f"{LONG}_int8"][4] == "passed(drop<=0.5)"
    assert rows[LONG][3].startswith("vssource:maxabserror") and "cosine>=0.999" in rows[LONG][4]
    note = next(line for line in done.stdout.splitlines() if line.startswith("note:"))
    assert f"{LONG}_int8" in note and "for information only" in note and "the gate decides" in note


def _rows(table: list[str]) -> list[list[str]]:
    """Cells of a rich table's body, each cell's lines joined and its spaces removed."""
    rows: list[list[str]] = []
    for line in table:
        if not line.startswith("│"):
            continue
        cells = ["".join(cell.split()) for cell in line.strip("│").split("│")]
        if cells[2]:  # the version column starts a row
            rows.append(cells)
        else:
            rows[-1] = [a + b for a, b in zip(rows[-1], cells, strict=True)]
    return rows


def _save_from_script(folder: Path) -> None:
    script = ("import torch\n"
              "class Net(torch.nn.Module):\n"
              "    def __init__(self):\n        super().__init__(); self.l = torch.nn.Linear(4, 2)\n"
              "    def forward(self, x):\n        return self.l(x)\n"
              "torch.save(Net(), 'net.pt'); torch.save(Net().state_dict(), 'state.pt')\n")
    subprocess.run([sys.executable, "-c", script], cwd=folder, check=True, timeout=120)


@pytest.mark.parametrize(("file", "needles"), [
    ("net.pt", ["saved by torch.save(module) from a script", "__main__", "move the class into a module file",
                "package.module:factory --weights"]),
    ("state.pt", ["holds a state dict (2 entries), not a module", "package.module:factory --weights",
                  "PYTHONPATH"]),
])
def test_torch_files_name_the_cause_and_the_fix(tmp_path: Path, file: str, needles: list[str]) -> None:
    _save_from_script(tmp_path)
    done = _run(tmp_path / file, "--name", "t", "--input", "x:FP32:4", "--repository", tmp_path / "repo",
                "--workdir", tmp_path / "build")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not (tmp_path / "repo").exists()


def test_an_unimportable_factory_says_it_must_be_on_the_path(tmp_path: Path) -> None:
    done = _run("nosuch_pkg.nets:make", "--name", "t", "--input", "x:FP32:4", "--repository", tmp_path / "r",
                "--workdir", tmp_path / "b")
    assert done.returncode == 2 and "PYTHONPATH=." in done.stderr and "No module named 'nosuch_pkg'" in done.stderr


def test_a_version_added_to_a_served_model_says_how_a_running_server_loads_it() -> None:
    from types import SimpleNamespace

    from tritonstack.cli.convert import _existed

    note = _existed(SimpleNamespace(name="sk", version=2, previous_versions=[1], not_served=None))
    print("\n", note)
    assert "`tritonstack versions promote sk 2`" in note and "running" in note
