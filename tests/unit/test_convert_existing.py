"""A new version of an existing model (issue 13 D2, D3): the operator's version policy and tuning are
kept, and a changed interface is refused before anything is written.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from tritonstack.convert.pipeline import ConvertOptions, convert_model
from tritonstack.convert.precision import parse_precisions
from tritonstack.convert.repository import write_version
from tritonstack.convert.samples import parse_input_specs
from tritonstack.convert.spec import ModelSpec, Platform, TensorSpec, VersionPolicy

from tritonstack.errors import RepositoryWriteError
from tritonstack.model_config import read_config, write_config

from .convert_models import mlp_onnx

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two logistic regressions on sklearn's bundled iris data (4 features, 3 classes)."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("iris")
    x, y = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), root / "iris_lr.joblib")
    joblib.dump(LogisticRegression(max_iter=500, C=0.1).fit(x, y), root / "iris_lr2.joblib")
    np.savez(root / "samples_data.npz", data=x[:20].astype(np.float32))
    return {"v1": root / "iris_lr.joblib", "v2": root / "iris_lr2.joblib", "samples_data": root / "samples_data.npz"}


def _options(tmp_path: Path, model: Path, **kw: object) -> ConvertOptions:
    return ConvertOptions(model=model, name="iris", repository=tmp_path / "repo", workdir=tmp_path / "build",
                          progress=False, **kw)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


def _operator_edits(config_path: Path) -> None:
    """What `versions promote iris 1` and tuning leave in a config: a specific policy, 2 instances, 100 us."""
    config = read_config(config_path)
    config.version_policy.specific.versions.append(1)
    config.instance_group[0].count = 2
    config.dynamic_batching.max_queue_delay_microseconds = 100
    write_config(config, config_path)


def test_a_new_version_keeps_the_policy_and_tuning_and_says_it_is_not_served(iris: dict, tmp_path: Path) -> None:
    convert_model(_options(tmp_path, iris["v1"]))
    config_path = tmp_path / "repo" / "iris" / "config.pbtxt"
    _operator_edits(config_path)
    report = convert_model(_options(tmp_path, iris["v2"]))
    config = read_config(config_path)
    print(f"after version {report.variants[0].version}: policy {list(config.version_policy.specific.versions)}, "
          f"instances {config.instance_group[0].count}, delay {config.dynamic_batching.max_queue_delay_microseconds}")
    assert report.variants[0].version == 2 and list(config.version_policy.specific.versions) == [1]
    assert config.instance_group[0].count == 2 and config.dynamic_batching.max_queue_delay_microseconds == 100
    assert config.model_warmup and config.input[0].name == "features"  # what the conversion owns is rewritten
    note = report.variants[0].not_served
    assert note and "version 2 is not served" in note and "tritonstack versions promote iris 2" in note


def test_options_given_again_replace_the_kept_settings(iris: dict, tmp_path: Path) -> None:
    convert_model(_options(tmp_path, iris["v1"]))
    _operator_edits(tmp_path / "repo" / "iris" / "config.pbtxt")
    report = convert_model(_options(tmp_path, iris["v2"], version_policy=VersionPolicy.parse("latest:1"),
                                    instance_count=3))
    config = read_config(tmp_path / "repo" / "iris" / "config.pbtxt")
    assert config.version_policy.latest.num_versions == 1 and config.instance_group[0].count == 3
    assert config.dynamic_batching.max_queue_delay_microseconds == 100  # not given again: kept
    assert report.variants[0].not_served is None


def test_a_model_without_a_policy_still_serves_its_new_version(iris: dict, tmp_path: Path) -> None:
    convert_model(_options(tmp_path, iris["v1"]))
    report = convert_model(_options(tmp_path, iris["v2"]))
    config = read_config(tmp_path / "repo" / "iris" / "config.pbtxt")
    assert config.version_policy.WhichOneof("policy_choice") is None and report.variants[0].not_served is None


def test_a_changed_interface_is_refused_before_anything_is_written(iris: dict, tmp_path: Path) -> None:
    x = np.load(iris["samples_data"])["data"]
    convert_model(_options(tmp_path, iris["v1"], inputs=parse_input_specs(["data:FP32:4"]), samples={"data": x}))
    before = _digest(tmp_path / "repo")
    with pytest.raises(RepositoryWriteError, match=r"exists with inputs data:FP32:4, this conversion "
                                                   r"features:FP32:4 .* convert with --input data:FP32:4, or pass"):
        convert_model(_options(tmp_path, iris["v2"]))
    assert _digest(tmp_path / "repo") == before
    with pytest.raises(RepositoryWriteError, match=r"max_batch_size 64, this conversion 8 .* --max-batch-size 64"):
        convert_model(replace(_options(tmp_path, iris["v2"], inputs=parse_input_specs(["data:FP32:4"]),
                                       samples={"data": x}), max_batch_size=8))
    assert _digest(tmp_path / "repo") == before
    report = convert_model(_options(tmp_path, iris["v2"], inputs=parse_input_specs(["data:FP32:4"]),
                                    samples={"data": x}))
    assert report.variants[0].version == 2


def test_no_variant_is_written_when_one_of_them_changed_its_interface(tmp_path: Path) -> None:
    """`m` matches but `m_fp16` exists with another input: neither gets a version (nothing half-written)."""
    onnx_path = mlp_onnx(tmp_path / "mlp.onnx")
    options = ConvertOptions(model=onnx_path, name="m", repository=tmp_path / "repo", workdir=tmp_path / "build",
                             progress=False, precisions=parse_precisions("fp32,fp16"))
    convert_model(replace(options, precisions=parse_precisions("fp32")))
    other = ModelSpec(name="m_fp16", platform=Platform.ONNX, max_batch_size=64,
                      inputs=[TensorSpec(name="x", dtype="FP32", dims=(5,))],
                      outputs=[TensorSpec(name="y", dtype="FP32", dims=(3,))])
    write_version(tmp_path / "repo", other, files={"model.onnx": onnx_path}, manifest={})
    before = _digest(tmp_path / "repo")
    with pytest.raises(RepositoryWriteError, match=r"'m_fp16' exists with inputs x:FP32:5, this conversion x:FP32:4"):
        convert_model(options)
    assert _digest(tmp_path / "repo") == before


def test_the_cli_refuses_a_changed_interface_in_one_line(iris: dict, tmp_path: Path) -> None:
    def run(*args: object) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tritonstack", "convert", *map(str, args), "--no-progress",
                               "--name", "iris", "--repository", tmp_path / "repo", "--workdir", tmp_path / "b"],
                              capture_output=True, text=True, timeout=240, cwd=ROOT)

    first = run(iris["v1"], "--input", "data:FP32:4", "--samples", iris["samples_data"])
    assert first.returncode == 0, first.stderr
    before = _digest(tmp_path / "repo")
    second = run(iris["v2"])
    print(second.stderr.strip())
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1 and "--input data:FP32:4" in second.stderr
    assert "new --name" in second.stderr and _digest(tmp_path / "repo") == before
