"""Options Triton would refuse, or that crashed convert, are refused in one line before anything is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tritonstack.convert.pipeline import ConvertOptions
from tritonstack.convert.precision import parse_precisions
from tritonstack.convert.spec import Batching, VersionPolicy

from tritonstack.errors import ConfigError

from .convert_models import mlp_onnx

ROOT = Path(__file__).resolve().parents[2]


def _options(tmp_path: Path, **changes: object) -> ConvertOptions:
    base = {"model": tmp_path / "m.onnx", "name": "n", "repository": tmp_path / "repo",
            "workdir": tmp_path / "work"}
    return ConvertOptions(**{**base, **changes})


@pytest.mark.parametrize(("changes", "needle"), [
    ({"batching": Batching(preferred_batch_sizes=(128,))}, "--preferred-batch-size 128"),
    ({"batching": Batching(preferred_batch_sizes=(0,))}, "--preferred-batch-size 0"),
    ({"batching": Batching(preferred_batch_sizes=(8, -4))}, "--preferred-batch-size -4"),
    ({"max_batch_size": 99999999999}, "--max-batch-size 99999999999"),
    ({"random_samples": 0}, "--random-samples 0"),
    ({"random_samples": -5}, "--random-samples -5"),
    ({"warmup_batch_size": -3}, "--warmup-batch-size -3"),
    ({"warmup_batch_size": 100}, "--warmup-batch-size 100"),
    ({"batching": Batching(max_queue_size=10**20)}, "--max-queue-size 100000000000000000000"),
    ({"version_policy": VersionPolicy(kind="specific", versions=(10**20,))}, "--version-policy 1000"),
])
def test_bad_numbers_are_refused(tmp_path: Path, changes: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _options(tmp_path, **changes)
    print("\n", caught.value)
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_preferred_sizes_up_to_the_max_are_fine(tmp_path: Path) -> None:
    _options(tmp_path, max_batch_size=64, batching=Batching(preferred_batch_sizes=(8, 64)))


def test_a_workdir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for workdir in (tmp_path / "file", tmp_path / "file" / "sub"):
        with pytest.raises(ConfigError, match="--workdir"):
            _options(tmp_path, workdir=workdir)


def test_a_calibration_cache_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--calibration-cache .* is a folder"):
        _options(tmp_path, calibration_cache=tmp_path)


@pytest.mark.parametrize(("text", "needle"), [("", "empty"), (" , ", "empty"), ("fp32,fp32", "'fp32'"),
                                              ("fp16,int8,FP16", "'fp16'")])
def test_empty_or_repeated_precisions_are_refused(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_precisions(text)
    assert needle in str(caught.value)


@pytest.mark.parametrize("args", [("--preferred-batch-size", "128"), ("--max-batch-size", "99999999999"),
                                  ("--random-samples", "0"), ("--workdir", "FILE"),
                                  ("--warmup-batch-size", "-3")])
def test_cli_refuses_in_one_line_and_writes_nothing(tmp_path: Path, args: tuple[str, str]) -> None:
    model = mlp_onnx(tmp_path / "m.onnx")
    (tmp_path / "FILE").write_text("x")
    args = tuple(str(tmp_path / a) if a == "FILE" else a for a in args)
    done = subprocess.run([sys.executable, "-m", "tritonstack", "convert", str(model), "--name", "n",
                           "--repository", str(tmp_path / "repo"), "--no-progress", *args],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)
    print("\n", done.stderr.strip())
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "repo").exists() and not (tmp_path / "build").exists()


@pytest.mark.parametrize("metric,budget", [("top1", float("inf")), ("top1", 5.0), ("cosine", -1.0),
                                           ("top1", float("nan"))])
def test_a_budget_outside_its_metrics_range_is_refused_with_the_options(tmp_path, metric, budget):
    """Outsider 13c: such budgets turned the gate off, or were refused only after the INT8 conversion."""
    with pytest.raises(ConfigError, match="budget"):
        _options(tmp_path, metric=metric, budget=budget)
