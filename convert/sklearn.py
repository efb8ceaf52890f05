"""scikit-learn estimators (saved with joblib) to ONNX, through skl2onnx.

    sklearn2onnx(Path("digits.joblib"), Path("model.onnx"), n_features=64)

The exported graph takes one FP32 input [batch, n_features], named `features` unless the caller
names it (`--input X:FP32:13`); a fitted scaler in a Pipeline stays in the graph. Classifiers give
`probabilities` [batch, n_classes] as a plain tensor (no ZipMap), so Triton can batch it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from tritonstack.convert.errtext import one_line
from tritonstack.convert.onnx_io import rename_outputs

from tritonstack.errors import ModelLoadError

__all__ = ["load_estimator", "run_estimator", "sklearn2onnx"]


def load_estimator(path: Path) -> Any:
    """Load a joblib-saved estimator, or raise ModelLoadError saying what is wrong."""
    import joblib

    try:
        estimator = joblib.load(path)
    except FileNotFoundError as exc:
        raise ModelLoadError(f"model file {path} does not exist") from exc
    except Exception as exc:  # noqa: BLE001 - joblib raises many kinds on corrupt files
        raise ModelLoadError(f"{path} is not a readable joblib file ({type(exc).__name__})") from exc
    if not hasattr(estimator, "predict"):
        raise ModelLoadError(f"{path} holds a {type(estimator).__name__}, not a scikit-learn estimator")
    return estimator


def run_estimator(estimator: Any, x: np.ndarray, output_name: str) -> dict[str, np.ndarray]:
    """The estimator's probabilities (classifiers) or predictions [N, k] on FP32 rows, as FP32.

    An estimator fitted on float64 may refuse float32 rows (KMeans: "Buffer dtype mismatch"): the same
    values are then given as float64; a failure with both is a ModelLoadError.
    """
    predict = estimator.predict_proba if hasattr(estimator, "predict_proba") else estimator.predict
    for dtype in (np.float32, np.float64):
        try:
            result = np.asarray(predict(np.asarray(x, dtype)), np.float32)
            break
        except Exception as exc:  # noqa: BLE001 - estimators raise many kinds
            error = exc
    else:
        raise ModelLoadError(f"the scikit-learn {type(estimator).__name__} fails to predict on rows of "
                             f"shape {np.shape(x)} ({type(error).__name__}: {one_line(error, limit=400)})"
                             ) from error
    if hasattr(estimator, "predict_proba"):
        return {"probabilities": result}
    return {output_name: result.reshape(len(x), -1)}


def sklearn2onnx(estimator_or_path: Any, onnx_path: Path, *, n_features: int,
                 input_name: str = "features") -> Path:
    """Export an estimator to ONNX with a dynamic batch axis; return `onnx_path`."""
    import onnx
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    estimator = estimator_or_path
    if isinstance(estimator_or_path, (str, Path)):
        estimator = load_estimator(Path(estimator_or_path))
    options = {id(estimator): {"zipmap": False}} if hasattr(estimator, "predict_proba") else None
    try:
        model = to_onnx(
            estimator, initial_types=[(input_name, FloatTensorType([None, n_features]))],
            options=options, target_opset={"": 17, "ai.onnx.ml": 3},
        )
    except Exception as exc:  # noqa: BLE001 - skl2onnx raises RuntimeError, its own kinds, ValueError
        raise ModelLoadError(_unconvertible(estimator, exc)) from exc
    if options:  # keep only the probabilities: labels are argmax and have no feature axis
        _keep_output(model, "probabilities")
    else:  # regressors write `variable`; clusterers (KMeans) `label` then `scores`: keep the prediction
        _keep_output(model, model.graph.output[0].name)
        _add_feature_axis(model)
        rename_outputs(model, ["variable"])
    onnx.save(model, str(onnx_path))
    return Path(onnx_path)


def _keep_output(model: Any, name: str) -> None:
    """Drop every graph output but `name`."""
    keep = [o for o in model.graph.output if o.name == name]
    del model.graph.output[:]
    model.graph.output.extend(keep)


def _add_feature_axis(model: Any) -> None:
    """Give a [batch] output (a clusterer's labels) the shape [batch, 1] Triton batching needs."""
    from onnx import helper, numpy_helper

    output = model.graph.output[0]
    dims = output.type.tensor_type.shape.dim
    if len(dims) != 1:
        return
    flat, axes = f"{output.name}__flat", f"{output.name}__axes"
    for node in model.graph.node:
        node.output[:] = [flat if n == output.name else n for n in node.output]
    model.graph.initializer.append(numpy_helper.from_array(np.array([1], np.int64), axes))
    model.graph.node.append(helper.make_node("Unsqueeze", [flat, axes], [output.name]))
    dims.add().dim_value = 1


def _unconvertible(estimator: Any, exc: Exception) -> str:
    """One line: which step skl2onnx cannot convert, its reason, and the ways out."""
    text = one_line(exc, limit=400)
    found = re.search(r"<class '(?:[\w.]+\.)?(\w+)'>", text) or re.search(r"^(\w+) is not supported", text)
    step = found.group(1) if found else type(estimator).__name__
    return (f"skl2onnx cannot convert the step {step} of this {type(estimator).__name__} ({text}); "
            "register an ONNX converter for it (skl2onnx.update_registered_converter), or drop the step "
            "from the saved model and apply it to the inputs before sending them")
