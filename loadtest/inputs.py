"""What a load test sends: random rows shaped as the model declares, or real samples from an .npz.

    rows = random_rows(client.model_info("digits_mlp"), count=16)
    rows = request_rows(info, shapes=parse_shapes(["tokens:32"]), samples_path="samples.npz")
    sent_shapes(rows)     # {"tokens": [[1, 32]]}: what the report says was sent

Random data fills dynamic (-1) dims with 1 unless `shapes` gives them (`--shape NAME:d1,d2`, dims
without the batch axis); once `shapes` sizes one dynamic input, it must size all of them.
An .npz holds one array per input name whose first axis indexes samples; each request carries one
sample, drawn at random (seeded), cast to the model's datatype. Every mismatch (unknown or missing
input, wrong rank or fixed dim, uncastable dtype) is a ConfigError raised before any load is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tritonstack.errors import ConfigError

__all__ = ["cast_notes", "nonfinite_notes", "parse_shapes", "random_rows", "request_rows", "sent_inputs_text",
           "sent_shapes", "wire_type"]

_LOGGER = logging.getLogger(__name__)
_WORDS = ("triton", "serves", "models", "on", "cpu", "with", "dynamic", "batching", "fast", "today")
Shapes = Mapping[str, Sequence[int]]


def _tensor(datatype: str, shape: list[int], rng: np.random.Generator) -> np.ndarray:
    if datatype == "BYTES":
        texts = [" ".join(rng.choice(_WORDS, size=8)) for _ in range(int(np.prod(shape)))]
        return np.array(texts, dtype=np.object_).reshape(shape)
    if datatype.startswith(("INT", "UINT")):
        return rng.integers(0, 8, size=shape).astype(datatype.lower())
    if datatype == "BOOL":
        return rng.random(shape) > 0.5
    floats = {"FP32": np.float32, "FP16": np.float16, "FP64": np.float64}
    return (rng.random(shape) * 8).astype(floats[datatype])


def parse_shapes(texts: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """`["NAME:d1,d2", ...]` -> {NAME: (d1, d2)}; ConfigError with the expected form otherwise."""
    shapes = {}
    for text in texts:
        name, _, dims = text.partition(":")
        try:
            values = tuple(int(d) for d in dims.split(",")) if dims else ()
        except ValueError:
            values = ()
        if not name or not values or min(values) < 1:
            raise ConfigError(f"--shape {text!r}: use NAME:d1,d2 with positive dims, e.g. tokens:32")
        if name in shapes:
            first = ",".join(map(str, shapes[name]))
            raise ConfigError(f"--shape gives input {name!r} twice ({name}:{first} and {text}): "
                              "give each input once")
        shapes[name] = values
    return shapes


def _fit(name: str, declared: Sequence[int], given: Sequence[int], source: str) -> None:
    """ConfigError unless `given` has the rank of `declared` and equals it on every fixed dim."""
    ok = len(given) == len(declared) and all(d < 0 or d == g for d, g in zip(declared, given, strict=False))
    if not ok:
        shown = ",".join(str(d) for d in declared)
        raise ConfigError(
            f"{source} gives input {name!r} shape {tuple(given)}; the model declares ({shown}) without "
            "the batch axis: keep the rank and the fixed dims, choose only the -1 ones"
        )


def _check_names(info: Any, names: Sequence[str], source: str) -> None:
    unknown = sorted(set(names) - set(info.inputs))
    if unknown:
        raise ConfigError(
            f"{source} names {unknown}, which model {info.name!r} has no input for; "
            f"its inputs are {sorted(info.inputs)}"
        )


def _dims(info: Any, shapes: Shapes) -> dict[str, list[int]]:
    """Dims (without the batch axis) of each input's random data: declared, -1 from `shapes` or 1."""
    _check_names(info, list(shapes), "--shape")
    out = {}
    for name, tensor in info.inputs.items():
        if name in shapes:
            _fit(name, tensor.dims, shapes[name], "--shape")
            out[name] = list(shapes[name])
        else:
            out[name] = [1 if d < 0 else d for d in tensor.dims]
    _check_all_dynamic_given(info, shapes)
    return out


def _check_all_dynamic_given(info: Any, shapes: Shapes) -> None:
    """ConfigError when --shape sizes some dynamic inputs but not another one: its -1 axes would be sent
    with length 1, which a model whose inputs share an axis (tokens and mask) rejects mid-load."""
    left = [n for n, t in info.inputs.items() if n not in shapes and any(d < 0 for d in t.dims)]
    if shapes and left:
        dims = ",".join(str(d) for d in info.inputs[left[0]].dims)
        raise ConfigError(
            f"--shape gives {', '.join(sorted(shapes))} but not input {left[0]!r}, which has dynamic dims "
            f"({dims}) too: add --shape {left[0]}:d1,... for it (or pass --inputs samples.npz)"
        )


def random_rows(
    info: Any, *, count: int = 16, seed: int = 0, shapes: Shapes | None = None
) -> list[dict[str, np.ndarray]]:
    """`count` single-row requests for a `ModelInfo` (batch axis of 1 added when batched)."""
    rng = np.random.default_rng(seed)
    dims = _dims(info, shapes or {})
    batch = [1] if info.batched else []
    return [
        {name: _tensor(t.datatype, batch + dims[name], rng) for name, t in info.inputs.items()}
        for _ in range(count)
    ]


def _cast(name: str, array: np.ndarray, datatype: str, path: Path) -> np.ndarray:
    if datatype == "BYTES":
        if array.dtype.kind not in "USOa":
            raise ConfigError(f"{path}: input {name!r} is BYTES (text); the array holds {array.dtype}")
        return array.astype(np.object_)
    target = np.dtype(np.bool_ if datatype == "BOOL" else datatype.lower().replace("fp", "float"))
    if not np.can_cast(array.dtype, target, casting="same_kind"):
        raise ConfigError(
            f"{path}: input {name!r} is {datatype}; the array holds {array.dtype}, "
            "which does not cast to it without changing kind"
        )
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused below, in one line
        cast = array.astype(target, copy=False)
    if cast.dtype != array.dtype and not _kept(array, cast):
        raise ConfigError(
            f"{path}: input {name!r} is {datatype}; the array holds {array.dtype} values that do not fit "
            f"in {datatype} (e.g. {_first_lost(array, cast)}); rescale them or save them as {target}"
        )
    return cast


def _kept(array: np.ndarray, cast: np.ndarray) -> bool:
    """True when a narrowing cast kept every value in range: integers equal, floats finite where they were."""
    if array.dtype.kind in "iub":
        return bool(np.array_equal(array, cast))
    return bool(np.array_equal(np.isfinite(array), np.isfinite(cast)))


def _first_lost(array: np.ndarray, cast: np.ndarray) -> object:
    lost = array != cast if array.dtype.kind in "iub" else np.isfinite(array) != np.isfinite(cast)
    return array[lost].flat[0]


def cast_notes(samples_path: str | Path, rows: Sequence[Mapping[str, np.ndarray]]) -> list[str]:
    """One line per --inputs array that was cast to the model's datatype on the way (e.g. float64 ->
    FP32, values within range: a narrowing cast refuses to run otherwise)."""
    if not samples_path or not rows:
        return []
    stored = {key: array.dtype for key, array in _npz_arrays(Path(samples_path)).items()}
    sent = {name: array.dtype for name, array in rows[0].items()}
    return [
        f"--inputs {samples_path}: input {name!r} holds {stored[name]}, sent as {wire_type(sent[name])} "
        f"(cast; every value within {wire_type(sent[name])} range)"
        for name in sorted(sent)
        if name in stored and stored[name] != sent[name] and sent[name] != np.object_
    ]


def nonfinite_notes(samples_path: str | Path) -> list[str]:
    """One line per --inputs float array with NaN or inf values: sent as they are (our client refuses
    them; the server answers them, and a drift window takes them in), so the report says how many."""
    if not samples_path:
        return []
    notes = []
    for name, array in sorted(_npz_arrays(Path(samples_path)).items()):
        if array.dtype.kind == "f" and array.ndim > 0 and len(array):
            odd = int((~np.isfinite(array.reshape(len(array), -1))).any(axis=1).sum())
            if odd:
                notes.append(f"--inputs {samples_path}: input {name!r} has NaN or inf in {odd} of "
                             f"{len(array)} rows, sent as they are (the server answers them; `TritonClient` "
                             "would refuse them)")
    return notes


def wire_type(dtype: np.dtype) -> str:
    """Triton's name of a numpy dtype (float32 -> FP32, int64 -> INT64, object -> BYTES)."""
    if dtype == np.object_:
        return "BYTES"
    if dtype == np.bool_:
        return "BOOL"
    return str(dtype).upper().replace("FLOAT", "FP")


def sent_inputs_text(rows: Sequence[Mapping[str, np.ndarray]]) -> str:
    """'x (1, 64) FP32; mask (1, 32) INT64': every distinct shape sent per input, with its datatype."""
    dtypes = {name: array.dtype for row in rows[:1] for name, array in row.items()}
    return "; ".join(
        f"{name} {' or '.join(str(tuple(s)) for s in shapes)} {wire_type(dtypes[name])}"
        for name, shapes in sent_shapes(rows).items()
    )


def _npz_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of the .npz at `path`; ConfigError saying how to make one when it is something else
    (a .npy, text, a pickle: np.load reads those too, or fails with a message about pickles)."""
    import zipfile

    how = "save one with numpy.savez(PATH, <input name>=<array of samples>, ...)"
    try:
        with path.open("rb") as file:
            magic = file.read(6)
        if not zipfile.is_zipfile(path):
            kind = "a .npy array" if magic == b"\x93NUMPY" else "not a zip archive"
            raise ConfigError(f"--inputs {path}: not an .npz ({kind}); {how}")
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"--inputs {path}: cannot read it as an .npz of arrays ({exc}); {how}") from exc


def _load_samples(info: Any, path: Path) -> dict[str, np.ndarray]:
    """The .npz arrays, checked against the model's inputs and cast to their datatypes."""
    arrays = _npz_arrays(path)
    _check_names(info, list(arrays), f"--inputs {path}")
    _check_counts(info, arrays, path)
    for name, array in arrays.items():
        _fit(name, info.inputs[name].dims, array.shape[1:], f"--inputs {path}")
    return {n: _cast(n, a, info.inputs[n].datatype, path) for n, a in arrays.items()}


def _check_counts(info: Any, arrays: dict[str, np.ndarray], path: Path) -> None:
    """ConfigError naming what is wrong: no arrays, an input missing, an array with no samples, or
    arrays with different numbers of samples."""
    wanted = sorted(info.inputs)
    if not arrays:
        raise ConfigError(f"--inputs {path} holds no arrays; save one per input {wanted} (numpy.savez)")
    missing = sorted(set(info.inputs) - set(arrays))
    if missing:
        raise ConfigError(f"--inputs {path}: needs one array per input {wanted}; missing: {missing}")
    counts = {n: len(a) if a.ndim else 0 for n, a in arrays.items()}
    empty = sorted(n for n, c in counts.items() if c == 0)
    if empty:
        raise ConfigError(f"--inputs {path}: {empty} hold no samples (0 on the first axis); save some")
    if len(set(counts.values())) != 1:
        raise ConfigError(f"--inputs {path}: the arrays hold different numbers of samples {counts}; "
                          "give every input the same number on the first axis")


#: What the prepared requests of one load-generator process may hold (each Locust user shares them): big
#: inputs get fewer distinct requests, not gigabytes of copies (a 64 MB input x 64 rows x users would).
PREPARED_BUDGET_BYTES = 128 << 20


def _within(count: int, row: Mapping[str, np.ndarray], budget_bytes: int) -> int:
    """`count`, lowered so that `count` rows like `row` fit in `budget_bytes` (never below 1)."""
    size = sum(int(a.nbytes) if a.dtype != np.object_ else sum(len(str(v)) for v in a.flat)
               for a in row.values())
    return max(1, min(count, budget_bytes // max(size, 1)))


def request_rows(
    info: Any,
    *,
    count: int = 64,
    seed: int = 0,
    shapes: Shapes | None = None,
    samples_path: str | Path = "",
    budget_bytes: int = PREPARED_BUDGET_BYTES,
) -> list[dict[str, np.ndarray]]:
    """Requests to cycle through: samples drawn from `samples_path` if given, else random rows; fewer
    than `count` (at least one) when `count` of them would hold more than `budget_bytes` of tensors."""
    if not samples_path:
        first = random_rows(info, count=1, seed=seed, shapes=shapes)
        count = _within(count, first[0], budget_bytes)
        return first if count == 1 else random_rows(info, count=count, seed=seed, shapes=shapes)
    path = Path(samples_path)
    arrays = _load_samples(info, path)
    count = _within(count, {n: a[:1] for n, a in arrays.items()}, budget_bytes)
    for name, dims in (shapes or {}).items():
        if name in arrays and tuple(arrays[name].shape[1:]) != tuple(dims):
            raise ConfigError(
                f"--shape {name}:{','.join(map(str, dims))} contradicts --inputs {path}, "
                f"whose samples are {arrays[name].shape[1:]}; drop one of the two"
            )
    total = len(next(iter(arrays.values())))
    picks = np.random.default_rng(seed).integers(0, total, size=min(count, max(total, 1) * 4))
    return [{n: a[i : i + 1] if info.batched else a[i] for n, a in arrays.items()} for i in picks]


def sent_shapes(rows: Sequence[Mapping[str, np.ndarray]]) -> dict[str, list[list[int]]]:
    """Every distinct shape sent per input (batch axis included), for the report."""
    seen: dict[str, list[list[int]]] = {}
    for row in rows:
        for name, array in row.items():
            shape = list(array.shape)
            if shape not in seen.setdefault(name, []):
                seen[name].append(shape)
    return seen
