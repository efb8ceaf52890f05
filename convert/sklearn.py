"""scikit-learn estimators (saved with joblib) to ONNX, through skl2onnx.

    sklearn2onnx(Path("digits.joblib"), Path("model.onnx"), n_features=64)

The exported graph takes one FP32 input [batch, n_features], named `features` unless the caller
names it (`--input X:FP32:13`); a fitted scaler in a Pipeline stays in the graph. Classifiers give
`probabilities` [batch, n_classes] as a plain tensor (no ZipMap), so Triton can batch it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tritonstack.errors import ModelLoadError

__all__ = ["load_estimator", "sklearn2onnx"]


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
    model = to_onnx(
        estimator, initial_types=[(input_name, FloatTensorType([None, n_features]))],
        options=options, target_opset={"": 17, "ai.onnx.ml": 3},
    )
    if options:  # keep only the probabilities: labels are argmax and have no feature axis
        keep = [o for o in model.graph.output if o.name == "probabilities"]
        del model.graph.output[:]
        model.graph.output.extend(keep)
    onnx.save(model, str(onnx_path))
    return Path(onnx_path)
