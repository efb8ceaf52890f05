"""Checks that a drift reference can work before `ops drift-reference` writes it.

    values = training_values(Path("x_train.npy"))          # ConfigError: not .npy, not 2-D, NaN...
    check_reference_target(Path("repo/mlp/2"), tensor="x", source="input", features=values.shape[1])

A reference the serving side cannot use (a tensor the model lacks, a width that differs from the
tensor's, non-finite values, a folder with no model) would be written and then stay silent: drift
never fires. Each is refused in one line naming what the model has.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from tritonstack.errors import ConfigError

__all__ = ["check_reference_target", "training_values"]

_LOGGER = logging.getLogger(__name__)
_MODEL_FILES = ("model.onnx", "model.plan", "model.pt", "model.py", "model.savedmodel")


def training_values(path: Path) -> np.ndarray:
    """The [rows, features] float array saved with `np.save` in `path`; ConfigError otherwise."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read --values {path} ({exc}); pass a .npy file written by "
                          "np.save(path, x) with x of shape (rows, features)") from exc
    if isinstance(loaded, np.lib.npyio.NpzFile):
        keys = ", ".join(loaded.files)
        loaded.close()
        raise ConfigError(f"--values {path} is an .npz archive (arrays: {keys}); pass a .npy file holding "
                          "one (rows, features) array: np.save('x.npy', np.load(path)['<key>'])")
    if loaded.dtype.kind not in "biuf":
        raise ConfigError(f"--values {path} holds {loaded.dtype} values; pass numbers, "
                          "shape (rows, features)")
    values = loaded.astype(np.float64)
    bad = int(np.size(values) - np.isfinite(values).sum())
    if bad:
        raise ConfigError(f"--values {path} has {bad} of {values.size} values NaN or infinite; drop or "
                          "fill those rows (a reference of them never scores drift)")
    return values


def check_reference_target(version_dir: Path, *, tensor: str, source: str, features: int) -> None:
    """ConfigError unless `version_dir` holds a model with a `source` tensor `tensor` of `features`
    values per row (read from the model's config.pbtxt, else from its ONNX graph)."""
    version_dir = Path(version_dir)
    if not version_dir.is_dir() or not any(p.name.startswith("model.") for p in version_dir.iterdir()):
        raise ConfigError(f"{version_dir} holds no model file ({', '.join(_MODEL_FILES)}); pass the version "
                          "folder of the model whose tensor the reference describes")
    tensors = _config_tensors(version_dir.parent / "config.pbtxt", source)
    if tensors is None:
        tensors = _onnx_tensors(version_dir / "model.onnx", source)
    if tensors is None:
        _LOGGER.debug("no config.pbtxt or readable ONNX for %s: tensor %s not checked", version_dir, tensor)
        return
    if tensor not in tensors:
        have = ", ".join(f"{name} ({_width_text(w)} wide)" for name, w in tensors.items()) or "none"
        raise ConfigError(f"the model in {version_dir} has no {source} named {tensor!r}; its {source}s: "
                          f"{have}; pass --tensor with one of them")
    width = tensors[tensor]
    if width is not None and width != features:
        raise ConfigError(f"--values has {features} features per row but {source} {tensor!r} is "
                          f"{width} wide; pass training values of shape (rows, {width})")


def _width_text(width: int | None) -> str:
    return "variable" if width is None else str(width)


def _config_tensors(config_path: Path, source: str) -> dict[str, int | None] | None:
    """name -> values per row (None: variable) of the config's inputs or outputs; None without a config."""
    if not config_path.is_file():
        return None
    from tritonstack.model_config import read_config

    config = read_config(config_path)
    entries = config.input if source == "input" else config.output
    batched = config.max_batch_size > 0
    return {e.name: _row_width(list(e.dims) if batched else list(e.dims)[1:]) for e in entries}


def _onnx_tensors(model_path: Path, source: str) -> dict[str, int | None] | None:
    """The same from an ONNX graph (first dimension: the batch); None if it cannot be read."""
    if not model_path.is_file():
        return None
    try:
        import onnx

        graph = onnx.load(str(model_path), load_external_data=False).graph
    except Exception as exc:  # noqa: BLE001 - any unreadable file: nothing to check against
        _LOGGER.debug("cannot read %s: %s", model_path, exc)
        return None
    initializers = {i.name for i in graph.initializer}
    entries = [e for e in (graph.input if source == "input" else graph.output) if e.name not in initializers]
    dims = {e.name: [d.dim_value if d.HasField("dim_value") else -1 for d in e.type.tensor_type.shape.dim]
            for e in entries}
    return {name: _row_width(d[1:]) for name, d in dims.items()}


def _row_width(dims: list[int]) -> int | None:
    """Values per row of a tensor with these (batch-free) dims; None when one is variable."""
    return None if any(d < 0 for d in dims) else math.prod(dims)
