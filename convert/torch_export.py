"""PyTorch modules to ONNX with a dynamic batch axis (torch.export-based exporter).

    module = load_torch_module("mypkg.models:make_net", weights=Path("net.pt"))
    torch2onnx(module, Path("model.onnx"), inputs=[TensorSpec(name="image", dtype="FP32",
               dims=(3, 224, 224))], output_names=["logits"])

A module is given as an importable factory `package.module:function` plus a state-dict file, or
as a file saved with `torch.save(module)`. Loading a pickled module runs code from the file:
only load files you trust.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from tritonstack.convert.errtext import one_line
from tritonstack.convert.onnx_io import load_onnx, rename_outputs
from tritonstack.convert.samples import random_feeds
from tritonstack.convert.spec import TensorSpec

from tritonstack.errors import InputSpecError, ModelLoadError

__all__ = ["is_torch_available", "load_torch_module", "run_torch", "torch2onnx"]

_LOGGER = logging.getLogger(__name__)
OPSET = 18


def is_torch_available() -> bool:
    """True when PyTorch can be imported."""
    return importlib.util.find_spec("torch") is not None


def load_torch_module(source: str | Path, *, weights: Path | None = None) -> Any:
    """Return an eval-mode nn.Module from `pkg.mod:factory` (+ state dict) or a saved-module file."""
    import torch

    text = str(source)
    if ":" in text and not Path(text).exists():
        module = _from_factory(text)
        if weights is not None:
            _load_weights(module, Path(weights))
    else:
        module = _from_file(Path(text))
    if isinstance(module, dict) and weights is None:
        raise ModelLoadError(f"{source} holds a state dict ({len(module)} entries), not a module; pass the "
                             f"code that builds the module as package.module:factory --weights {source} "
                             "(the module importable, e.g. PYTHONPATH=.)")
    if not isinstance(module, torch.nn.Module):
        raise ModelLoadError(f"{source} gave a {type(module).__name__}, not a torch.nn.Module")
    return module.eval()


def _from_factory(text: str) -> Any:
    module_name, _, attr = text.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ModelLoadError(f"cannot import factory {text!r} ({exc}); name it package.module:function, the "
                             "module importable from here (run from its folder with PYTHONPATH=., or "
                             "pip install it)") from exc
    try:
        return factory()
    except Exception as exc:  # noqa: BLE001 - user code can raise anything
        raise ModelLoadError(f"the factory {text} raised {type(exc).__name__}: {one_line(exc)}; fix it: "
                             "called with no arguments, it must return a torch.nn.Module") from exc


def _load_weights(module: Any, path: Path) -> None:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        _check_keys(module, state, path)
        module.load_state_dict(state)
    except FileNotFoundError as exc:
        raise ModelLoadError(f"weights file {path} does not exist") from exc
    except pickle.UnpicklingError as exc:
        raise ModelLoadError(f"--weights {path} holds pickled objects, not only tensors (a whole module "
                             "saved with torch.save(module)?); convert that file as the model itself (its "
                             "class importable), or save torch.save(model.state_dict(), path) and pass "
                             "that") from exc
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - corrupt pickles and shape mismatches raise many kinds
        raise ModelLoadError(f"{path} is not a state dict for this module ({one_line(exc)})") from exc


def _check_keys(module: Any, state: Any, path: Path) -> None:
    """Name the missing and unexpected keys (torch's own message lists them after a line break)."""
    if not isinstance(state, dict):
        return
    expected, given = set(module.state_dict()), set(state)
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if missing or unexpected:
        raise ModelLoadError(f"{path} is not a state dict for this module: missing keys {_few(missing)}, "
                             f"unexpected keys {_few(unexpected)}; save it from this module class "
                             "(torch.save(model.state_dict(), path)) or fix the factory")


def _few(keys: list[str], count: int = 6) -> str:
    shown = ", ".join(keys[:count]) or "none"
    return f"[{shown}{f' (+{len(keys) - count} more)' if len(keys) > count else ''}]"


def _from_file(path: Path) -> Any:
    import torch

    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except ImportError as exc:
        raise ModelLoadError(_not_importable(path, exc)) from exc
    except AttributeError as exc:
        if "__main__" not in str(exc):
            raise ModelLoadError(f"{path} names a class that cannot be found ({one_line(exc)}); make its "
                                 "module importable here (PYTHONPATH=.)") from exc
        raise ModelLoadError(
            f"{path} was saved by torch.save(module) from a script, so its class lives in that script's "
            f"__main__ and cannot be loaded elsewhere ({one_line(exc)}); move the class into a module "
            "file, or save torch.save(model.state_dict(), 'weights.pt') and convert "
            "package.module:factory --weights weights.pt (module on PYTHONPATH)") from exc
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"{path} is not a readable torch.save file ({type(exc).__name__}); "
                             "save the module with torch.save(module, path)") from exc


def _not_importable(path: Path, exc: ImportError) -> str:
    """The message for a saved module whose class lives in a module that cannot be imported here."""
    name = exc.name or "?"
    top = name.split(".")[0]
    folder = next((str(d.resolve()) for d in (path.parent, Path.cwd())
                   if (d / f"{top}.py").is_file() or (d / top / "__init__.py").is_file()), None)
    where = f"PYTHONPATH={folder}" if folder else f"PYTHONPATH=<the folder that holds {top}>"
    return (f"{path} holds a module whose class is defined in {name!r}, which is not importable here "
            f"({one_line(exc)}); run with {where}, or convert {name}:FACTORY --weights STATE_DICT.pt")


def run_torch(module: Any, feeds: dict[str, np.ndarray], input_names: list[str]) -> list[np.ndarray]:
    """Run the module on numpy feeds (positional, in `input_names` order); return numpy outputs."""
    import torch

    with torch.no_grad():
        result = module(*(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in input_names))
    result = result if isinstance(result, (tuple, list)) else (result,)
    return [r.detach().cpu().numpy() for r in result]


def torch2onnx(module: Any, onnx_path: Path, *, inputs: list[TensorSpec],
               output_names: list[str] | None = None) -> Path:
    """Export `module` to ONNX (opset 18) with a dynamic batch axis on every input and output."""
    import torch

    feeds = random_feeds(inputs, batch_size=2)
    try:
        outputs = run_torch(module, feeds, [s.name for s in inputs])
    except Exception as exc:  # noqa: BLE001 - any failure here means the spec does not fit
        first = one_line(exc)
        shapes = {s.name: (-1, *s.dims) for s in inputs}
        raise InputSpecError(f"the model fails on inputs {shapes} ({first}); fix --input") from exc
    args = tuple(torch.from_numpy(feeds[s.name]) for s in inputs)
    batch = torch.export.Dim("batch")
    shapes = tuple({0: batch, **{i + 1: torch.export.Dim.AUTO for i, d in enumerate(s.dims) if d == -1}}
                   for s in inputs)
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        program = _export(module, args, inputs, shapes)
    finally:
        quiet.setLevel(level)
    model = program.model_proto
    rename_outputs(model, output_names or [f"output_{i}" for i in range(len(outputs))])
    _save(model, Path(onnx_path))
    return Path(onnx_path)


def _export(module: Any, args: tuple, inputs: list[TensorSpec], shapes: tuple) -> Any:
    import torch

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return torch.onnx.export(module, args, dynamo=True, input_names=[s.name for s in inputs],
                                 dynamic_shapes=shapes, opset_version=OPSET, verbose=False)


def _save(model: Any, path: Path) -> None:
    import onnx

    onnx.save(model, str(path))
    load_onnx(path)
