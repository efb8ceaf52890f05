"""Shared pieces of the reference builders: seeding, training loops, summaries.

    torch_seed(0)
    fit_classifier(module, x_train, y_train, epochs=30)
    summary = summarize(report)
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["fit_classifier", "summarize", "torch_seed"]


def torch_seed(seed: int) -> None:
    """Seed torch and keep it to one thread group, so builds repeat on any machine."""
    import torch

    torch.manual_seed(seed)


def fit_classifier(module: Any, x: np.ndarray, y: np.ndarray, *, epochs: int, lr: float = 1e-3,
                   batch_size: int = 64, weight_decay: float = 0.0) -> Any:
    """Train `module` (which returns logits) with Adam + cross-entropy; return it in eval mode."""
    import torch

    data = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)))
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
    module.train()
    for _ in range(epochs):
        for features, labels in loader:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(module.logits(features), labels).backward()
            optimizer.step()
    return module.eval()


def summarize(report: Any) -> dict[str, Any]:
    """The figures `tritonstack models build` prints for one reference model."""
    fp32 = report.variants[0]
    variants = {}
    for v in report.variants:
        variants[v.name] = {
            "precision": v.precision.value, "version": v.version,
            "max_abs_error": max((e.max_abs for e in _errors(v).values()), default=0.0),
            "gate": None if v.gate is None else v.gate.as_dict(),
            "calibration": None if v.int8 is None else {"method": v.int8.method_label,
                                                        "samples": v.int8.samples},
        }
    return {"model": fp32.name, "version": fp32.version, "variants": variants,
            "rejected": dict(report.rejected),
            "skipped": dict(report.skipped), "warnings": list(report.warnings)}


def _errors(variant: Any) -> dict:
    """Errors on the real samples when there were any, else on the random inputs."""
    return variant.errors_by_set.get("samples") or variant.errors
