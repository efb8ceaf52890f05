"""Source models of a conversion: PyTorch, ONNX or scikit-learn, behind one small interface.

    source = load_source("mypkg.nets:resnet", inputs=specs, weights=Path("w.pt"), output_names=["logits"])
    source.export(Path("build/model.onnx"))
    expected = source.run(feeds)          # {output name: array}, to verify the export against

The kind is told by the path: `.onnx` is ONNX, `.joblib`/`.pkl` a scikit-learn estimator, `.pt`/
`.pth` (torch.save of a module) or `package.module:factory` a PyTorch module.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tritonstack.convert.errtext import one_line
from tritonstack.convert.manifest import file_sha256
from tritonstack.convert.onnx_io import check_input_specs, load_onnx, onnx_tensor_specs
from tritonstack.convert.spec import TensorSpec
from tritonstack.convert.verify import run_onnx

from tritonstack.errors import InputSpecError, ModelLoadError

__all__ = ["Source", "load_source", "source_kind"]

_SKLEARN = (".joblib", ".pkl", ".pickle")
_TORCH = (".pt", ".pth")


@dataclass
class Source:
    """A loaded source model: how to export it and how to run it as the reference."""

    kind: str
    location: str
    inputs: list[TensorSpec]
    output_names: list[str]
    sha256: str
    model: Any = field(repr=False, default=None)
    notes: list[str] = field(default_factory=list)  # one line each, for the user (e.g. no --weights given)

    def export(self, dst: Path) -> Path:
        """Write the FP32 ONNX model to `dst`."""
        if self.kind == "onnx":
            shutil.copyfile(self.location, dst)
            return Path(dst)
        if self.kind == "sklearn":
            from tritonstack.convert.sklearn import sklearn2onnx

            spec = self.inputs[0]
            return sklearn2onnx(self.model, dst, n_features=spec.dims[0], input_name=spec.name)
        from tritonstack.convert.torch_export import torch2onnx

        return torch2onnx(self.model, dst, inputs=self.inputs, output_names=self.output_names)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The source's outputs on `feeds`, by output name."""
        if self.kind == "onnx":
            return run_onnx(Path(self.location), feeds)
        if self.kind == "sklearn":
            from tritonstack.convert.sklearn import run_estimator

            return run_estimator(self.model, feeds[self.inputs[0].name], self.output_names[0])
        from tritonstack.convert.torch_export import run_torch

        outputs = run_torch(self.model, feeds, [s.name for s in self.inputs])
        return dict(zip(self.output_names, outputs, strict=True))


def source_kind(model: str | Path) -> str:
    """`onnx`, `sklearn` or `torch`, from the path or factory string."""
    text = str(model)
    suffix = Path(text).suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix in _SKLEARN:
        return "sklearn"
    if suffix in _TORCH or (":" in text and not Path(text).exists()):
        return "torch"
    raise ModelLoadError(f"cannot tell the kind of model {text!r}; use .onnx, .joblib/.pkl "
                         "(scikit-learn), .pt/.pth (torch.save) or package.module:factory")


def load_source(model: str | Path, *, inputs: list[TensorSpec] | None = None,
                output_names: list[str] | None = None, weights: Path | None = None) -> Source:
    """Load and check a source model; raise ModelLoadError or InputSpecError saying what is wrong."""
    kind = source_kind(model)
    if kind == "onnx":
        return _onnx_source(Path(model), inputs)
    if kind == "sklearn":
        return _sklearn_source(Path(model), inputs)
    return _torch_source(model, inputs, output_names, weights)


def _onnx_source(path: Path, inputs: list[TensorSpec] | None) -> Source:
    _check_dynamic_batch(load_onnx(path), path)
    actual_inputs, outputs = onnx_tensor_specs(path)
    if inputs:
        check_input_specs(path, inputs)
    return Source(kind="onnx", location=str(path), inputs=inputs or actual_inputs,
                  output_names=[o.name for o in outputs], sha256=file_sha256(path))


def _check_dynamic_batch(model: Any, path: Path) -> None:
    initializers = {i.name for i in model.graph.initializer}
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        if value.name not in initializers and dims and dims[0].HasField("dim_value"):
            raise InputSpecError(f"{path}: input {value.name!r} has a fixed batch size {dims[0].dim_value}; "
                                 "Triton batching needs a dynamic first axis: re-export with one "
                                 "(e.g. dynamic_shapes / dynamic_axes on axis 0)")


def _sklearn_source(path: Path, inputs: list[TensorSpec] | None) -> Source:
    from tritonstack.convert.sklearn import load_estimator

    estimator = load_estimator(path)
    n_features = int(getattr(estimator, "n_features_in_", 0)) or None
    spec = TensorSpec(name="features", dtype="FP32", dims=(n_features or -1,))
    if inputs:
        given = inputs[0]
        if len(inputs) != 1 or given.dtype != "FP32" or len(given.dims) != 1 or \
                (n_features is not None and given.dims != spec.dims):
            raise InputSpecError(
                f"input spec {[f'{s.name}:{s.dtype}:{s.dims}' for s in inputs]} does not fit {path}; a "
                f"scikit-learn model takes one input NAME:FP32:{n_features or 'N_FEATURES'} "
                f"(e.g. --input {given.name}:FP32:{n_features or 'N_FEATURES'})")
        spec = given
    names = ["probabilities"] if hasattr(estimator, "predict_proba") else ["variable"]
    return Source(kind="sklearn", location=str(path), inputs=[spec], output_names=names,
                  sha256=file_sha256(path), model=estimator)


def _torch_source(model: str | Path, inputs: list[TensorSpec] | None, output_names: list[str] | None,
                  weights: Path | None) -> Source:
    from tritonstack.convert.torch_export import load_torch_module

    if not inputs:
        raise InputSpecError(f"a PyTorch model needs an input spec; pass --input NAME:DTYPE:DIMS for {model}")
    from tritonstack.convert.samples import random_feeds
    from tritonstack.convert.torch_export import run_torch

    module = load_torch_module(model, weights=weights)
    try:
        count = len(run_torch(module, random_feeds(inputs, batch_size=2), [s.name for s in inputs]))
    except Exception as exc:  # noqa: BLE001 - any failure here means the spec does not fit
        first = one_line(exc)
        shapes = {s.name: (-1, *s.dims) for s in inputs}
        raise InputSpecError(f"{model} fails on inputs {shapes} ({first}); fix --input") from exc
    if output_names and len(output_names) != count:
        raise InputSpecError(f"{len(output_names)} output names {output_names} given; {model} has {count} "
                             "(repeat --output once per output: --output a --output b)")
    output_names = output_names or [f"output_{i}" for i in range(count)]
    is_file = Path(str(model)).is_file()
    hashed = weights if weights is not None else (Path(str(model)) if is_file else None)
    notes = [] if hashed else [f"no --weights given: {model} is converted with the weights its factory "
                               "sets (random unless the factory loads them); pass --weights STATE_DICT.pt "
                               "to load trained ones"]
    return Source(kind="torch", location=str(model), inputs=inputs, output_names=output_names,
                  sha256=file_sha256(hashed) if hashed else "", model=module, notes=notes)
