"""Input specs and sample data: what a model takes, random samples, and user-given files.

    specs = parse_input_specs(["image:FP32:3,224,224"])
    feeds = random_feeds(specs, batch_size=4)
    batches = load_samples(Path("calibration.npz"), specs, what="calibration data")

A sample file is a `.npy` (models with one input) or a `.npz` whose keys are the input names; an
optional `labels` array in a `.npz` holds the task labels of a held-out set. The first axis is
the sample axis. Every array is checked against the spec, so a wrong shape fails here with a
message naming the file, the shape seen and the shape expected.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tritonstack.convert.spec import TensorSpec

from tritonstack.errors import CalibrationError, ConversionError, InputSpecError

__all__ = ["SampleSet", "as_batches", "load_samples", "parse_input_specs", "random_feeds", "row_digests"]

NUMPY_DTYPES = {"FP32": np.float32, "FP16": np.float16, "FP64": np.float64, "INT64": np.int64,
                "INT32": np.int32, "INT8": np.int8, "UINT8": np.uint8, "BOOL": np.bool_}


def parse_input_specs(texts: Iterable[str]) -> list[TensorSpec]:
    """Parse `NAME:DTYPE:D1,D2,...[:MAX,...]` items (dims without the batch axis; -1 for a dynamic
    one; the optional last part gives the largest size of each -1 dim, in order, e.g. tokens:INT64:-1:512)."""
    specs = []
    for text in texts:
        parts = text.split(":")
        if len(parts) not in (3, 4):
            raise InputSpecError(f"input spec {text!r} is not NAME:DTYPE:DIMS[:MAX]; use e.g. "
                                 "image:FP32:3,224,224 or tokens:INT64:-1:512")
        name, dtype, dims = parts[:3]
        try:
            shape = tuple(int(d) for d in dims.split(",") if d.strip())
            maxima = [int(d) for d in parts[3].split(",") if d.strip()] if len(parts) == 4 else None
        except ValueError as exc:
            given = ":".join(parts[2:])
            raise InputSpecError(f"input spec {text!r}: dims {given!r} are not integers") from exc
        specs.append(TensorSpec(name=name, dtype=dtype.upper(), dims=shape,
                                max_dims=None if maxima is None else _max_dims(text, shape, maxima)))
    return specs


def _max_dims(text: str, dims: tuple[int, ...], maxima: list[int]) -> tuple[int, ...]:
    if len(maxima) != dims.count(-1):
        raise InputSpecError(f"input spec {text!r}: give one maximum per -1 dim ({dims.count(-1)}), "
                             "e.g. tokens:INT64:-1:512")
    given = iter(maxima)
    return tuple(next(given) if d == -1 else d for d in dims)


def random_feeds(specs: list[TensorSpec], *, batch_size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs of the given specs (dynamic dims become 8; integers in [0, 100))."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        shape = (batch_size, *(8 if d == -1 else d for d in spec.dims))
        dtype = NUMPY_DTYPES[spec.dtype]
        if np.issubdtype(dtype, np.floating):
            feeds[spec.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[spec.name] = rng.integers(0, 100, shape).astype(dtype)
    return feeds


@dataclass(frozen=True)
class SampleSet:
    """Samples by input name (first axis: samples) and optional task labels."""

    feeds: dict[str, np.ndarray]
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(next(iter(self.feeds.values())))


def load_samples(source: Path | SampleSet | Mapping[str, np.ndarray] | np.ndarray, specs: list[TensorSpec], *,
                 what: str, error: type[ConversionError] = CalibrationError) -> SampleSet:
    """Read and check a sample file (or arrays); raise `error` saying what does not fit."""
    if isinstance(source, SampleSet):
        source = {**source.feeds, **({"labels": source.labels} if source.labels is not None else {})}
    arrays = _read(source, what, error) if isinstance(source, (str, Path)) else source
    if isinstance(arrays, np.ndarray):
        if len(specs) != 1:
            raise error(f"{what}: one array given but the model has inputs {[s.name for s in specs]}; "
                        "use a .npz with one key per input")
        arrays = {specs[0].name: arrays}
    arrays = dict(arrays)
    labels = arrays.pop("labels", None)
    missing = [s.name for s in specs if s.name not in arrays]
    if missing:
        raise error(f"{what}: no array for input(s) {missing}; keys seen {sorted(arrays)}")
    feeds = {s.name: _check(np.asarray(arrays[s.name]), s, what, error) for s in specs}
    for name, array in (*feeds.items(), *([("labels", np.asarray(labels))] if labels is not None else [])):
        _check_finite(array, name, what, error)
    counts = {len(a) for a in feeds.values()} | ({len(labels)} if labels is not None else set())
    if len(counts) != 1 or 0 in counts:
        raise error(f"{what}: inputs and labels have different or zero sample counts {sorted(counts)}")
    return SampleSet(feeds=feeds, labels=labels)


def _read(path: Path, what: str, error: type[ConversionError]) -> np.ndarray | dict[str, np.ndarray]:
    path = Path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError as exc:
        raise error(f"{what}: file {path} does not exist") from exc
    except (OSError, ValueError, EOFError) as exc:
        raise error(f"{what}: {path} is not a readable .npy/.npz file ({exc})") from exc
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        return {key: loaded[key] for key in loaded.files}


def _check_finite(array: np.ndarray, name: str, what: str, error: type[ConversionError]) -> None:
    """Refuse NaN/Inf up front: quantizers and metrics would turn them into warnings and vague errors."""
    if not np.issubdtype(array.dtype, np.floating) or array.size == 0:
        return
    bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise error(f"{what} {name!r} contains NaN/Inf ({bad} of {array.size} values); drop or fix those "
                    "samples and retry")


def _check(array: np.ndarray, spec: TensorSpec, what: str, error: type[ConversionError]) -> np.ndarray:
    expected = ("N", *spec.dims)
    fits = array.ndim == len(spec.dims) + 1 and all(
        d == -1 or d == s for d, s in zip(spec.dims, array.shape[1:], strict=True))
    if not fits:
        raise error(f"{what}: input {spec.name!r} has shape {array.shape}; the model expects "
                    f"{tuple(expected)} (first axis: samples); fix the array's shape")
    dtype = NUMPY_DTYPES.get(spec.dtype)
    if dtype is not None and not np.can_cast(array.dtype, dtype, casting="same_kind"):
        raise error(f"{what}: input {spec.name!r} has dtype {array.dtype}; the model expects {spec.dtype}")
    return array.astype(dtype, copy=False) if dtype is not None else array


def as_batches(samples: SampleSet, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    """Yield the samples as feeds of at most `batch_size` rows."""
    for start in range(0, len(samples), batch_size):
        yield {name: array[start:start + batch_size] for name, array in samples.feeds.items()}


def row_digests(samples: SampleSet) -> set[bytes]:
    """One digest per sample (over all inputs), to find samples shared by two sets."""
    import hashlib

    digests = set()
    for i in range(len(samples)):
        digest = hashlib.sha1()
        for name in sorted(samples.feeds):
            digest.update(np.ascontiguousarray(samples.feeds[name][i]).tobytes())
        digests.add(digest.digest())
    return digests
