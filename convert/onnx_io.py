"""Read ONNX files safely and describe their inputs and outputs as TensorSpecs.

    inputs, outputs = onnx_tensor_specs(Path("model.onnx"))
    check_input_specs(Path("model.onnx"), parse_input_specs(["image:FP32:3,224,224"]))

Any failure to read becomes ModelLoadError; a spec that does not fit becomes InputSpecError.
"""

from __future__ import annotations

from pathlib import Path

from tritonstack.convert.errtext import one_line
from tritonstack.convert.spec import TensorSpec

from tritonstack.errors import InputSpecError, ModelLoadError

__all__ = ["check_input_specs", "load_onnx", "onnx_tensor_specs", "rename_outputs"]

_TRITON = {1: "FP32", 2: "UINT8", 3: "INT8", 5: "INT16", 6: "INT32", 7: "INT64", 8: "STRING",
           9: "BOOL", 10: "FP16", 11: "FP64"}


def load_onnx(path: Path):  # noqa: ANN201 - onnx.ModelProto
    """Load and check an ONNX file; raise ModelLoadError saying what is wrong."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist; pass the path of an .onnx file")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - protobuf/onnx raise many kinds on corrupt files
        first = one_line(exc)
        raise ModelLoadError(f"{path} is not a valid ONNX model ({first}); re-export it") from exc
    return model


def onnx_tensor_specs(path: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Inputs and outputs of an ONNX model, dims without the leading (batch) axis."""
    model = load_onnx(path)
    initializers = {i.name for i in model.graph.initializer}
    inputs = [_spec(v) for v in model.graph.input if v.name not in initializers]
    return inputs, [_spec(v) for v in model.graph.output]


def _spec(value) -> TensorSpec:  # noqa: ANN001 - onnx.ValueInfoProto
    tensor = value.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
    return TensorSpec(name=value.name, dtype=_TRITON.get(tensor.elem_type, "FP32"),
                      dims=tuple(d if d > 0 else -1 for d in dims[1:]))


def check_input_specs(path: Path, specs: list[TensorSpec]) -> None:
    """Raise InputSpecError unless `specs` name exactly the model's inputs with fitting dtype and dims."""
    actual = {s.name: s for s in onnx_tensor_specs(path)[0]}
    if set(actual) != {s.name for s in specs}:
        raise InputSpecError(f"input spec names {[s.name for s in specs]} do not match the model's "
                             f"inputs {sorted(actual)}; use those names")
    for spec in specs:
        have = actual[spec.name]
        fits = len(have.dims) == len(spec.dims) and all(
            a in (-1, b) for a, b in zip(have.dims, spec.dims, strict=True))
        if have.dtype != spec.dtype or not fits:
            raise InputSpecError(f"input {spec.name!r} declared {spec.dtype}{list(spec.dims)}; the model "
                                 f"takes {have.dtype}{list(have.dims)} (without the batch axis)")


def rename_outputs(model, names: list[str]) -> None:  # noqa: ANN001 - onnx.ModelProto, edited in place
    """Give the graph outputs `names`, renaming any internal value that already uses one of them."""
    graph = model.graph
    if len(names) != len(graph.output):
        raise InputSpecError(f"{len(names)} output names {names} given; the model has "
                             f"{len(graph.output)} outputs")
    for old, new in zip([o.name for o in graph.output], names, strict=True):
        if old != new:
            _rename_value(graph, new, f"{new}__internal")
            _rename_value(graph, old, new)


def _rename_value(graph, old: str, new: str) -> None:  # noqa: ANN001
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]
    for value in (*graph.input, *graph.output, *graph.value_info, *graph.initializer):
        if value.name == old:
            value.name = new
