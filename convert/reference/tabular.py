"""tabular_mlp: an MLP on scikit-learn's breast-cancer data, served on raw features.

    summary = build_tabular_mlp(Path("model_repository"), Path("build"))
    probabilities = training_time_predict(Path("build"), raw_features)   # the parity reference

The fitted StandardScaler's mean and scale are buffers of the network's first step and the
temperature fitted on a validation split divides the logits before the softmax, so the served
graph is: raw features -> scaler -> MLP -> calibrated probabilities. `training_time_predict` runs
the same computation the way training did (scikit-learn scaler, then the PyTorch MLP) for the
parity test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tritonstack.convert.pipeline import ConvertOptions, convert_model
from tritonstack.convert.precision import Precision
from tritonstack.convert.quantize import Int8Recipe
from tritonstack.convert.reference.common import fit_classifier, summarize, torch_seed
from tritonstack.convert.samples import SampleSet
from tritonstack.convert.spec import Batching, TensorSpec

__all__ = ["TabularMLP", "build_tabular_mlp", "tabular_split", "training_time_predict"]

NAME = "tabular_mlp"
N_FEATURES = 30


def TabularMLP() -> Any:  # noqa: N802 - factory named like the module it builds
    """The untrained network with identity scaler and temperature 1 (set by the builder)."""
    import torch
    from torch import nn

    class _TabularMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.zeros(N_FEATURES))
            self.register_buffer("scale", torch.ones(N_FEATURES))
            self.register_buffer("temperature", torch.ones(1))
            self.mlp = nn.Sequential(nn.Linear(N_FEATURES, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                                     nn.Linear(64, 2))

        def logits(self, features: torch.Tensor) -> torch.Tensor:
            return self.mlp((features - self.mean) / self.scale)

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.logits(features) / self.temperature, dim=1)

    return _TabularMLP()


def tabular_split() -> tuple[np.ndarray, ...]:
    """x_train, x_val, x_test, y_train, y_val, y_test (FP32 raw features)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    x, y = load_breast_cancer(return_X_y=True)
    x = x.astype(np.float32)
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=0.2, random_state=0,
                                                      stratify=y_rest)
    return x_train, x_val, x_test, y_train, y_val, y_test


def _fit_temperature(module: Any, x_val: np.ndarray, y_val: np.ndarray) -> float:
    import torch

    with torch.no_grad():
        logits = module.logits(torch.from_numpy(x_val))
    labels = torch.from_numpy(y_val.astype(np.int64))
    grid = np.geomspace(0.1, 50.0, 200)
    losses = [float(torch.nn.functional.cross_entropy(logits / t, labels)) for t in grid]
    return float(grid[int(np.argmin(losses))])


def build_tabular_mlp(repository: Path, workdir: Path) -> dict[str, Any]:
    """Fit scaler + MLP + temperature, export, verify, gate INT8, write tabular_mlp."""
    import joblib
    import torch
    from sklearn.preprocessing import StandardScaler

    torch_seed(0)
    x_train, x_val, x_test, y_train, y_val, y_test = tabular_split()
    scaler = StandardScaler().fit(x_train)
    module = TabularMLP()
    module.mean.copy_(torch.from_numpy(scaler.mean_.astype(np.float32)))
    module.scale.copy_(torch.from_numpy(scaler.scale_.astype(np.float32)))
    fit_classifier(module, x_train, y_train, epochs=40, lr=3e-3, batch_size=32, weight_decay=1e-4)
    temperature = _fit_temperature(module, x_val, y_val)
    module.temperature.fill_(temperature)
    folder = Path(workdir) / NAME
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(module.state_dict(), folder / "weights.pt")
    joblib.dump(scaler, folder / "scaler.joblib")
    report = convert_model(ConvertOptions(
        model=f"{__name__}:TabularMLP", weights=folder / "weights.pt", name=NAME,
        repository=Path(repository), workdir=Path(workdir),
        inputs=[TensorSpec(name="features", dtype="FP32", dims=(N_FEATURES,))],
        output_names=["probabilities"],
        precisions=(Precision.FP32, Precision.INT8), samples={"features": x_test},
        calibration=SampleSet(feeds={"features": x_train[:64]}), recipe=Int8Recipe(),
        holdout=SampleSet(feeds={"features": x_test}, labels=y_test), metric="top1",
        on_gate_failure="skip", max_batch_size=512, batching=Batching(max_queue_delay_us=200), progress=False,
        manifest_extra={"preprocessing": "StandardScaler (fitted on the training split) in the graph",
                        "postprocessing": f"softmax(logits / T), T={temperature:.4f} (validation-split NLL)"},
    ))
    summary = summarize(report)
    summary["temperature"] = float(module.temperature)
    return summary


def training_time_predict(workdir: Path, features: np.ndarray) -> np.ndarray:
    """Probabilities computed as in training: scikit-learn scaler, then the PyTorch MLP (eager)."""
    import joblib
    import torch

    folder = Path(workdir) / NAME
    scaler = joblib.load(folder / "scaler.joblib")
    module = TabularMLP()
    module.load_state_dict(torch.load(folder / "weights.pt", weights_only=True))
    module.eval()
    scaled = torch.from_numpy(scaler.transform(features).astype(np.float32))
    with torch.no_grad():
        return torch.softmax(module.mlp(scaled) / module.temperature, dim=1).numpy()
