"""Tiny models for the conversion tests (built in milliseconds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def tiny_cnn() -> Any:
    """A seeded conv net on [N, 1, 8, 8] giving 10 logits."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10)).eval()


def mlp_onnx(path: Path, batch: str | int = "N") -> Path:
    """An ONNX model x FP32[N, 4] -> y FP32[N, 3] (MatMul + Add + Softmax), built with onnx.helper."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "b")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["z"]),
             helper.make_node("Softmax", ["z"], ["y"], axis=1)]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], [weight, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return Path(path)


def negative_mse(outputs: np.ndarray, labels: np.ndarray) -> float:
    """A user metric (higher is better)."""
    return -float(((np.asarray(outputs) - np.asarray(labels)) ** 2).mean())
