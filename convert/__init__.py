"""Conversion: trained models into verified artifacts in a Triton model repository.

    from tritonstack.convert import ModelSpec, write_version
    from tritonstack.convert.reference import build_all

    build_all(Path("model_repository"), Path("build"))

Each step is a standalone function over paths (`sklearn2onnx`, `verify_outputs`, `write_version`).
"""

from tritonstack.convert.repository import existing_versions, write_version
from tritonstack.convert.spec import Batching, ModelSpec, Platform, TensorSpec

__all__ = ["Batching", "ModelSpec", "Platform", "TensorSpec", "existing_versions", "write_version"]
