"""digits_cnn: a small CNN trained on scikit-learn's 8x8 digits; FP32 and, if the gate passes, INT8.

    summary = build_digits_cnn(Path("model_repository"), Path("build"))

Clients send raw pixel values (0-16) as `image` [N, 1, 8, 8]; the scaling to [0, 1] is the
first layer of the network, so serving applies exactly the training-time preprocessing. INT8 is
static QDQ, per-channel, calibrated on 64 training images (MinMax) and gated on the 450 test
images: top-1 may drop by at most 1 percentage point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tritonstack.convert.pipeline import ConvertOptions, convert_model
from tritonstack.convert.precision import Precision
from tritonstack.convert.quantize import CalibrationMethod, Int8Recipe
from tritonstack.convert.reference.common import fit_classifier, summarize, torch_seed
from tritonstack.convert.reference.digits import digits_split
from tritonstack.convert.samples import SampleSet
from tritonstack.convert.spec import Batching, TensorSpec

__all__ = ["DigitsCNN", "build_digits_cnn", "digits_images"]

NAME = "digits_cnn"


def DigitsCNN() -> Any:  # noqa: N802 - factory named like the module it builds
    """The untrained network (importable factory for `tritonstack convert --factory`)."""
    import torch
    from torch import nn

    class _DigitsCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))

        def logits(self, image: torch.Tensor) -> torch.Tensor:
            return self.features(image / 16.0)

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.logits(image), dim=1)

    return _DigitsCNN()


def digits_images() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits split of digits_mlp, as raw [N, 1, 8, 8] images."""
    x_train, x_test, y_train, y_test = digits_split()
    return x_train.reshape(-1, 1, 8, 8), x_test.reshape(-1, 1, 8, 8), y_train, y_test


def build_digits_cnn(repository: Path, workdir: Path) -> dict[str, Any]:
    """Train, export, verify, quantize, gate and write digits_cnn (+ digits_cnn_int8)."""
    import torch

    torch_seed(0)
    x_train, x_test, y_train, y_test = digits_images()
    module = fit_classifier(DigitsCNN(), x_train, y_train, epochs=25, lr=2e-3)
    folder = Path(workdir) / NAME
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(module.state_dict(), folder / "weights.pt")
    report = convert_model(ConvertOptions(
        model=f"{__name__}:DigitsCNN", weights=folder / "weights.pt", name=NAME,
        repository=Path(repository), workdir=Path(workdir),
        inputs=[TensorSpec(name="image", dtype="FP32", dims=(1, 8, 8))], output_names=["probabilities"],
        precisions=(Precision.FP32, Precision.INT8), samples={"image": x_test[:64]},
        calibration=SampleSet(feeds={"image": x_train[:64]}),
        recipe=Int8Recipe(method=CalibrationMethod.MINMAX),
        holdout=SampleSet(feeds={"image": x_test}, labels=y_test), metric="top1",
        on_gate_failure="skip", max_batch_size=256, batching=Batching(max_queue_delay_us=200), progress=False,
        manifest_extra={"preprocessing": "pixels / 16 in the graph (clients send raw 0-16 values)",
                        "training": {"data": "sklearn load_digits, 75/25 split (seed 0)", "epochs": 25}},
    ))
    return summarize(report)
