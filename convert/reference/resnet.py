"""resnet18: the standard ResNet-18 (BasicBlock, [2, 2, 2, 2]) with seeded random weights.

    summary = build_resnet18(Path("model_repository"), Path("build"))

For speed measurements only: the weights are random, so accuracy means nothing. The INT8 variant
(static QDQ, per-channel, MinMax on 32 random images; the 3-channel 7x7/2 stem rewritten as
SpaceToDepth + a 12-channel 4x4 convolution, which ONNX Runtime runs about twice as fast in INT8)
is gated on the cosine similarity of its logits to the FP32 logits on 32 other random images
(mean >= 0.99). torchvision is not used: its PyPI build does not import beside this torch, and the
architecture is small enough to write here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tritonstack.convert.pipeline import ConvertOptions, convert_model
from tritonstack.convert.precision import Precision
from tritonstack.convert.quantize import CalibrationMethod, Int8Recipe
from tritonstack.convert.reference.common import summarize, torch_seed
from tritonstack.convert.samples import SampleSet
from tritonstack.convert.spec import Batching, TensorSpec

__all__ = ["ResNet18", "build_resnet18"]

NAME = "resnet18"


def _block(torch_nn: Any, cin: int, cout: int, stride: int) -> Any:
    nn = torch_nn

    class BasicBlock(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                                nn.BatchNorm2d(cout))

        def forward(self, x: Any) -> Any:
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + identity)

    return BasicBlock()


def ResNet18(num_classes: int = 1000) -> Any:  # noqa: N802 - factory named like the module it builds
    """ResNet-18 with He-initialised random weights (seed torch before calling to repeat them)."""
    from torch import nn

    layers: list[Any] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                         nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [_block(nn, cin, cout, stride), _block(nn, cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)]
    model = nn.Sequential(*layers)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    return model.eval()


def _images(count: int, seed: int) -> np.ndarray:
    """Smooth random images (a low-resolution pattern upsampled), closer to photos than white noise."""
    rng = np.random.default_rng(seed)
    low = rng.standard_normal((count, 3, 14, 14)).astype(np.float32)
    return np.repeat(np.repeat(low, 16, axis=2), 16, axis=3)


def build_resnet18(repository: Path, workdir: Path) -> dict[str, Any]:
    """Export, verify, quantize, gate and write resnet18 (+ resnet18_int8)."""
    import torch

    torch_seed(0)
    folder = Path(workdir) / NAME
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(ResNet18().state_dict(), folder / "weights.pt")
    report = convert_model(ConvertOptions(
        model=f"{__name__}:ResNet18", weights=folder / "weights.pt", name=NAME,
        repository=Path(repository), workdir=Path(workdir),
        inputs=[TensorSpec(name="image", dtype="FP32", dims=(3, 224, 224))], output_names=["logits"],
        precisions=(Precision.FP32, Precision.INT8), random_samples=4,
        calibration=SampleSet(feeds={"image": _images(32, seed=1)}),
        recipe=Int8Recipe(method=CalibrationMethod.MINMAX, space_to_depth_stem=True),
        holdout=SampleSet(feeds={"image": _images(32, seed=2)}), metric="cosine",
        on_gate_failure="skip", max_batch_size=32, batching=Batching(preferred_batch_sizes=(8, 16),
                                                                   max_queue_delay_us=2000),
        progress=False,
    ))
    return summarize(report)
