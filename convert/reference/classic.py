"""wine_forest: a scikit-learn RandomForest on the wine data set, exported through skl2onnx.

    summary = build_wine_forest(Path("model_repository"), Path("build"))

The fitted StandardScaler is part of the Pipeline and so of the graph (raw features in). FP32
only: tree ensembles run as ONNX-ML TreeEnsemble operators, which ONNX Runtime cannot quantize.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tritonstack.convert.pipeline import ConvertOptions, convert_model
from tritonstack.convert.precision import Precision, Tolerance
from tritonstack.convert.reference.common import summarize
from tritonstack.convert.samples import SampleSet
from tritonstack.convert.spec import Batching

__all__ = ["build_wine_forest", "wine_split"]

NAME = "wine_forest"
INT8_SKIP = "tree ensembles (ONNX-ML TreeEnsemble operators) have no INT8 kernels in ONNX Runtime"


def wine_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x_train, x_test, y_train, y_test (FP32 raw features)."""
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    x, y = load_wine(return_X_y=True)
    return train_test_split(x.astype(np.float32), y, test_size=0.3, random_state=0, stratify=y)


def build_wine_forest(repository: Path, workdir: Path) -> dict[str, Any]:
    """Fit, save with joblib, convert (skl2onnx), verify and write wine_forest."""
    import joblib
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, x_test, y_train, y_test = wine_split()
    pipeline = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=50, max_depth=6,
                                                                      random_state=0))
    pipeline.fit(x_train, y_train)
    folder = Path(workdir) / NAME
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, folder / "model.joblib")
    # skl2onnx trees compare in float32, scikit-learn in float64: a sample on a split threshold can
    # take the other branch in one tree, which moves a probability by 1/n_estimators. The outputs
    # are probabilities (scale 1), so that bound is exact and a scale-free cosine adds nothing.
    tolerance = Tolerance(atol=1.0 / 50 + 1e-5, rtol=0.0, min_cosine=None)
    report = convert_model(ConvertOptions(
        model=folder / "model.joblib", tolerances={Precision.FP32: tolerance}, name=NAME,
        repository=Path(repository), workdir=Path(workdir),
        samples=SampleSet(feeds={"features": x_test}), max_batch_size=512,
        batching=Batching(max_queue_delay_us=200), progress=False,
    ))
    summary = summarize(report)
    summary["skipped"]["wine_forest_int8"] = INT8_SKIP
    summary["accuracy"] = float((pipeline.predict(x_test) == y_test).mean())
    return summary
