"""Conversion: trained models into verified artifacts in a Triton model repository.

    from tritonstack.convert import ConvertOptions, Precision, convert_model, parse_input_specs

    report = convert_model(ConvertOptions(
        model="model.onnx", name="net", repository=Path("model_repository"), workdir=Path("build"),
        precisions=(Precision.FP32, Precision.INT8), calibration=Path("calib.npz"),
        holdout=Path("holdout.npz"), metric="top1",
    ))

Each step is also a standalone function over paths: `torch2onnx`, `sklearn2onnx`, `verify_outputs`,
`onnx2fp16`, `onnx2int8`, `run_gate`, `onnx2trt`, `write_version`. The reference models are built
by `tritonstack.convert.reference.build_all`.
"""

from tritonstack.convert.fp16 import onnx2fp16
from tritonstack.convert.gate import GateResult, run_gate
from tritonstack.convert.pipeline import ConvertOptions, ConvertReport, build_variants, convert_model
from tritonstack.convert.precision import Precision, Tolerance
from tritonstack.convert.quantize import CalibrationMethod, Int8Recipe, onnx2int8
from tritonstack.convert.repository import existing_versions, write_version
from tritonstack.convert.samples import SampleSet, load_samples, parse_input_specs
from tritonstack.convert.sklearn import sklearn2onnx
from tritonstack.convert.spec import (
    Batching,
    EnsembleStep,
    ModelSpec,
    Platform,
    TensorSpec,
    TrtAccelerator,
    VersionPolicy,
)
from tritonstack.convert.torch_export import torch2onnx
from tritonstack.convert.trt import is_tensorrt_available, onnx2trt
from tritonstack.convert.verify import verify_outputs

__all__ = [
    "Batching", "CalibrationMethod", "ConvertOptions", "ConvertReport", "EnsembleStep", "GateResult",
    "Int8Recipe", "ModelSpec", "Platform", "Precision", "SampleSet", "TensorSpec", "Tolerance",
    "TrtAccelerator", "VersionPolicy", "build_variants", "convert_model", "existing_versions",
    "is_tensorrt_available", "load_samples", "onnx2fp16", "onnx2int8", "onnx2trt", "parse_input_specs",
    "run_gate", "sklearn2onnx", "torch2onnx", "verify_outputs", "write_version",
]
