"""Read ONNX files safely and describe their inputs and outputs as TensorSpecs.

    inputs, outputs = onnx_tensor_specs(Path("model.onnx"))
    check_input_specs(Path("model.onnx"), parse_input_specs(["image:FP32:3,224,224"]))

    copy_onnx_with_external_data(Path("net.onnx"), Path("repo/net/3"))   # net.onnx + net.onnx.data

Any failure to read becomes ModelLoadError; a spec that does not fit becomes InputSpecError. A model
whose weights lie in external data files (torch.onnx.export's default) is read where it lies.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

from tritonstack.convert.errtext import one_line
from tritonstack.convert.spec import TensorSpec

from tritonstack.errors import InputSpecError, ModelLoadError, RepositoryWriteError

__all__ = ["check_input_specs", "copy_onnx_with_external_data", "external_data_files", "load_onnx",
           "onnx_tensor_specs", "rename_outputs"]

#: Below this a model's external weights are embedded (protobuf refuses a message of 2 GiB or more).
EMBED_LIMIT_BYTES = 1_800_000_000

_TRITON = {1: "FP32", 2: "UINT8", 3: "INT8", 5: "INT16", 6: "INT32", 7: "INT64", 8: "STRING",
           9: "BOOL", 10: "FP16", 11: "FP64"}


def load_onnx(path: Path):  # noqa: ANN201 - onnx.ModelProto
    """Load and check an ONNX file; raise ModelLoadError saying what is wrong."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist; pass the path of an .onnx file")
    model = _read(path)
    external = _external_files(model, path)  # a missing weights file is named, with the fix
    try:
        if external:
            onnx.load_external_data_for_model(model, str(path.parent))
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - protobuf/onnx raise many kinds on corrupt files
        first = one_line(exc)
        raise ModelLoadError(f"{path} is not a valid ONNX model ({first}); re-export it") from exc
    return model


def external_data_files(path: Path) -> dict[str, Path]:
    """The external data files `path` refers to, by their location in the model (empty if none).

    Raise ModelLoadError naming the file if one is missing or lies outside the model's folder.
    """
    return _external_files(_read(Path(path)), Path(path))


def _read(path: Path):  # noqa: ANN202 - onnx.ModelProto, its external weights not read
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises many kinds on corrupt files
        raise ModelLoadError(f"{path} is not a valid ONNX model ({one_line(exc)}); re-export it") from exc


def _external_files(model, path: Path) -> dict[str, Path]:  # noqa: ANN001 - onnx.ModelProto
    base = path.parent.resolve()
    files = {}
    for location in sorted({_location(t) for t in _tensors(model.graph) if _location(t)}):
        data = (base / location).resolve()
        if not data.is_relative_to(base):
            raise ModelLoadError(f"{path} keeps weights in {location!r}, outside its folder; re-save it with "
                                 "its weights inside: onnx.save(model, path, save_as_external_data=False)")
        if not data.is_file():
            raise ModelLoadError(
                f"{path} keeps its weights in {location!r}, which is not in {base}; put that file next to "
                f"{path.name} (as the export wrote it) or re-save the model with its weights inside "
                "(onnx.save(model, path, save_as_external_data=False))")
        files[location] = data
    return files


def copy_onnx_with_external_data(source: Path, version_dir: Path, *, filename: str = "model.onnx") -> None:
    """Write `version_dir/<filename>` from `source`, with the weights it keeps in external files.

    Weights under EMBED_LIMIT_BYTES are embedded (one self-contained file); larger ones are copied
    next to it under the locations the model names. ModelLoadError (one line) if a data file is
    missing, RepositoryWriteError if `version_dir` cannot be written.
    """
    source, version_dir = Path(source), Path(version_dir)
    if not source.is_file():
        raise ModelLoadError(f"model file {source} does not exist; pass the path of an .onnx file")
    data = external_data_files(source)
    try:
        version_dir.mkdir(parents=True, exist_ok=True)
        _write_with_data(source, version_dir / filename, data)
    except OSError as exc:
        raise RepositoryWriteError(f"writing {version_dir / filename} failed ({exc.strerror or exc}); check "
                                   "the free space and permissions of that folder") from exc


def _write_with_data(source: Path, target: Path, data: dict[str, Path]) -> None:
    import onnx

    if data and source.stat().st_size + sum(p.stat().st_size for p in data.values()) < EMBED_LIMIT_BYTES:
        onnx.save(onnx.load(str(source)), str(target))  # its external data read from where it lies
        return
    for location, path in data.items():
        (target.parent / location).parent.mkdir(parents=True, exist_ok=True)
        if (target.parent / location).resolve() != path:
            shutil.copyfile(path, target.parent / location)
    if target.resolve() != source.resolve():
        shutil.copyfile(source, target)


def _tensors(graph) -> Iterator:  # noqa: ANN001 - onnx.GraphProto; yields onnx.TensorProto
    """Every tensor of `graph`: initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _tensors(attribute.g)
            for sub in attribute.graphs:
                yield from _tensors(sub)


def _location(tensor) -> str | None:  # noqa: ANN001 - onnx.TensorProto
    import onnx

    if tensor.data_location != onnx.TensorProto.EXTERNAL:
        return None
    return next((e.value for e in tensor.external_data if e.key == "location"), None)


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
                             f"{len(graph.output)} outputs (repeat --output once per output)")
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
