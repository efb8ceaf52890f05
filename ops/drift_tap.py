"""Drift monitoring for any backend: a Python-backend tap next to the model, joined by an ensemble.

    write_drift_tap(Path("model_repository"), "digits_mlp")
    # model_repository/digits_mlp_drift/1/{model.py, tritonstack_drift.py, drift_reference.json}
    # model_repository/digits_mlp_monitored: ensemble = digits_mlp + digits_mlp_drift
    tritonstack ops drift-tap digits_mlp --repository model_repository       # the same, from the CLI

Clients call `<model>_monitored` instead of `<model>`: the answer is the model's, plus one extra
output `drift_window_rows`. Use this where the model runs on a native backend (NGC image on a GPU
host); on the embedded server the ONNX runner already publishes drift for its models.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tritonstack.ops.drift import REFERENCE_FILE, DriftReference

from tritonstack.errors import ConfigError
from tritonstack.model_config import new_config, read_config, write_config

__all__ = ["write_drift_tap"]

_HERE = Path(__file__).parent
ROWS_OUTPUT = "drift_window_rows"


def _latest_reference(model_dir: Path) -> Path:
    folders = [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    for version in sorted(folders, reverse=True):
        if (model_dir / str(version) / REFERENCE_FILE).is_file():
            return model_dir / str(version) / REFERENCE_FILE
    raise ConfigError(f"no version of {model_dir.name!r} holds {REFERENCE_FILE}; write one with "
                      "`tritonstack ops drift-reference` first")


def write_drift_tap(repository: Path, model: str, *, reference: Path | None = None) -> tuple[str, str]:
    """Write `<model>_drift` (the tap) and `<model>_monitored` (the ensemble); return their names."""
    model_dir = Path(repository) / model
    if not (model_dir / "config.pbtxt").is_file():
        raise ConfigError(f"model {model!r} has no config.pbtxt in {repository}")
    source = reference or _latest_reference(model_dir)
    drift = DriftReference.load(source)
    if drift.source != "input":
        raise ConfigError(f"{source} watches output {drift.tensor!r}; a tap sees inputs only - "
                          "monitor outputs with the ONNX runner's hook")
    served = read_config(model_dir / "config.pbtxt")
    tensor = next((t for t in served.input if t.name == drift.tensor), None)
    if tensor is None:
        names = [t.name for t in served.input]
        raise ConfigError(f"{model!r} has no input {drift.tensor!r}; its inputs are {names}")
    tap, ensemble = f"{model}_drift", f"{model}_monitored"
    _write_tap(Path(repository) / tap, source, served, tensor, model)
    _write_ensemble(Path(repository) / ensemble, served, tap, model, tensor.name)
    return tap, ensemble


def _write_tap(tap_dir: Path, reference: Path, served, tensor, model: str) -> None:  # noqa: ANN001
    version_dir = tap_dir / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(_HERE / "tap_model.py", version_dir / "model.py")
    shutil.copy2(_HERE / "drift.py", version_dir / "tritonstack_drift.py")
    shutil.copy2(reference, version_dir / REFERENCE_FILE)
    config = new_config()
    config.name, config.backend, config.max_batch_size = tap_dir.name, "python", served.max_batch_size
    config.input.add().CopyFrom(tensor)
    config.output.add(name=ROWS_OUTPUT, data_type="TYPE_FP32", dims=[1])
    config.instance_group.add(count=1, kind="KIND_CPU")
    if served.max_batch_size > 0:
        config.dynamic_batching.max_queue_delay_microseconds = 1000
    config.parameters["monitored_model"].string_value = model
    write_config(config, tap_dir / "config.pbtxt")


def _write_ensemble(ensemble_dir: Path, served, tap: str, model: str, tap_input: str) -> None:  # noqa: ANN001
    ensemble_dir.mkdir(parents=True, exist_ok=True)
    (ensemble_dir / "1").mkdir(exist_ok=True)
    config = new_config()
    config.name, config.platform = ensemble_dir.name, "ensemble"
    config.max_batch_size = served.max_batch_size
    config.input.extend(served.input)
    config.output.extend(served.output)
    config.output.add(name=ROWS_OUTPUT, data_type="TYPE_FP32", dims=[1])
    step = config.ensemble_scheduling.step.add(model_name=model, model_version=-1)
    for tensor in served.input:
        step.input_map[tensor.name] = tensor.name
    for tensor in served.output:
        step.output_map[tensor.name] = tensor.name
    tap_step = config.ensemble_scheduling.step.add(model_name=tap, model_version=-1)
    tap_step.input_map[tap_input] = tap_input
    tap_step.output_map[ROWS_OUTPUT] = ROWS_OUTPUT
    write_config(config, ensemble_dir / "config.pbtxt")

