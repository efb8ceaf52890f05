"""The "seed-style" baseline for W2: FastAPI + PyTorch, one forward pass per request.

    TRITONSTACK_BASELINE_WEIGHTS=mlp.npz uvicorn tritonstack.loadtest.baseline_app:app --workers 2

What a first version of a model service usually looks like: the same digits MLP (weights exported
from the trained scikit-learn pipeline by `export_mlp_weights`, scaler folded in front), a JSON
body `{"features": [[64 floats], ...]}`, `torch.no_grad()` forward, JSON probabilities back.
No batching across requests. Imports torch: only ever run in its own (uvicorn) process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["app", "export_mlp_weights"]


def export_mlp_weights(joblib_path: Path, out_path: Path) -> Path:
    """Save a fitted StandardScaler + MLPClassifier pipeline's arrays as an .npz."""
    import joblib

    scaler, mlp = joblib.load(joblib_path).steps[0][1], joblib.load(joblib_path).steps[-1][1]
    arrays = {"mean": scaler.mean_, "scale": scaler.scale_}
    for i, (w, b) in enumerate(zip(mlp.coefs_, mlp.intercepts_, strict=True)):
        arrays[f"w{i}"], arrays[f"b{i}"] = w, b
    np.savez(out_path, **{k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()})
    return out_path


def _build_module(weights: Any):  # noqa: ANN202 - torch.nn.Module, torch imported lazily
    import torch

    layers: list[Any] = []
    count = len([k for k in weights.files if k.startswith("w")])
    for i in range(count):
        linear = torch.nn.Linear(*weights[f"w{i}"].shape)
        linear.weight.data = torch.from_numpy(weights[f"w{i}"].T.copy())
        linear.bias.data = torch.from_numpy(weights[f"b{i}"].copy())
        layers += [linear, torch.nn.ReLU()] if i < count - 1 else [linear, torch.nn.Softmax(dim=1)]
    mean, scale = torch.from_numpy(weights["mean"]), torch.from_numpy(weights["scale"])

    class Mlp(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Sequential(*layers)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body((x - mean) / scale)

    return Mlp().eval()


def _create_app():  # noqa: ANN202 - FastAPI
    import torch
    from fastapi import FastAPI

    torch.set_num_threads(int(os.environ.get("TRITONSTACK_BASELINE_THREADS", "1")))
    model = _build_module(np.load(os.environ["TRITONSTACK_BASELINE_WEIGHTS"]))
    api = FastAPI(title="seed-style digits MLP")

    @api.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.post("/predict")
    def predict(body: dict[str, Any]) -> dict[str, Any]:
        with torch.no_grad():
            out = model(torch.tensor(body["features"], dtype=torch.float32))
        return {"probabilities": out.tolist()}

    return api


app = _create_app() if "TRITONSTACK_BASELINE_WEIGHTS" in os.environ else None
