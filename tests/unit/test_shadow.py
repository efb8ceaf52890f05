"""The launch shadow repository (serve/shadow.py): Python-routed models switched, the rest linked."""

from __future__ import annotations

from pathlib import Path

from tritonstack.serve.plan import plan_repository
from tritonstack.serve.shadow import build_shadow, release_shadow

from tritonstack.model_config import new_config, read_config, write_config


def _model(repository: Path, name: str, *, platform: str = "onnxruntime_onnx", drift: bool = False,
           runner: str = "") -> Path:
    (repository / name / "1").mkdir(parents=True)
    config = new_config()
    config.name, config.platform = name, platform
    if runner:
        config.parameters["tritonstack_runner"].string_value = runner
    config.version_policy.specific.versions.append(1)
    write_config(config, repository / name / "config.pbtxt")
    (repository / name / "1" / "model.onnx").write_bytes(b"onnx")
    (repository / name / "labels.txt").write_text("a\n")
    if drift:
        (repository / name / "1" / "drift_reference.json").write_text("{}")
    return repository / name


def test_shadow_switches_python_routed_models_and_links_the_rest(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _model(repo, "plain")
    drifty = _model(repo, "drifty", drift=True, runner="python")
    _model(repo, "native_drift", drift=True)  # a drift reference alone stays native: linked
    _model(repo, "trt", platform="tensorrt_plan")
    plan = plan_repository(repo)
    shadow = build_shadow(repo, plan, tmp_path / "shadow")
    assert sorted(p.name for p in shadow.iterdir()) == ["drifty", "native_drift", "plain"]  # TensorRT left out
    assert (shadow / "native_drift").is_symlink()
    assert (shadow / "plain").is_symlink() and (shadow / "plain").resolve() == (repo / "plain").resolve()
    switched = shadow / "drifty"
    assert switched.is_dir() and not switched.is_symlink()
    config = read_config(switched / "config.pbtxt")
    assert (config.backend, config.platform, config.name) == ("onnxruntime_python", "", "drifty")
    assert list(config.version_policy.specific.versions) == [1]
    assert (switched / "1").is_symlink() and (switched / "1" / "drift_reference.json").is_file()
    assert (switched / "labels.txt").read_text() == "a\n"
    assert read_config(drifty / "config.pbtxt").platform == "onnxruntime_onnx"  # user's file untouched
    print(f"\nshadow: {len(plan.models)} served, {len(plan.python)} switched, {len(plan.skipped)} skipped")


def test_released_shadow_follows_the_users_folder(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    drifty = _model(repo, "drifty", drift=True, runner="python")
    plan = plan_repository(repo)
    shadow = build_shadow(repo, plan, tmp_path / "shadow")
    release_shadow(shadow, repo, plan)
    (drifty / "2").mkdir()  # versions add, after launch
    assert (shadow / "drifty").is_symlink() and (shadow / "drifty" / "2").is_dir()
    assert read_config(shadow / "drifty" / "config.pbtxt").platform == "onnxruntime_onnx"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo", "shadow"]  # nothing left aside
    release_shadow(shadow, repo, plan)  # idempotent


def test_shadow_with_the_python_runner_everywhere_is_all_links(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _model(repo, "drifty", drift=True)
    shadow = build_shadow(repo, plan_repository(repo, runner="python"), tmp_path / "shadow")
    assert (shadow / "drifty").is_symlink()
