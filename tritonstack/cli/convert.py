"""`tritonstack convert`: a PyTorch, ONNX or scikit-learn model into verified repository models.

    tritonstack convert model.onnx --name resnet --precision fp32,fp16,int8 \\
        --calibration calib.npz --holdout holdout.npz --metric top1
    tritonstack convert mypkg.nets:make_net --weights net.pt --input image:FP32:3,224,224 --name net

Every variant is verified (and INT8 gated) before anything is written; on failure the command
prints one line naming the problem and exits with code 2, and the repository is unchanged.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

__all__ = ["register"]

_Opt = typer.Option


def convert(  # noqa: PLR0913 - one option per documented knob
    model: Annotated[str, typer.Argument(help="Model file (.onnx, .joblib, .pt saved by torch.save(module) "
                                         "with the class in an importable module), or package.module:factory "
                                         "(importable: on PYTHONPATH, e.g. PYTHONPATH=.; its state dict via "
                                         "--weights).")],
    name: Annotated[str, _Opt(help="Model name in the repository (variants get _fp16, _int8).")],
    repository: Annotated[Path, _Opt(help="Repository to write into.")] = Path("model_repository"),
    workdir: Annotated[Path, _Opt(help="Scratch folder for intermediate files.")] = Path("build"),
    input: Annotated[list[str] | None, _Opt(help="NAME:DTYPE:DIMS[:MAX] without the batch axis; -1 "  # noqa: A002, UP007
                                            "marks a dynamic axis, MAX its largest size (served requests "
                                            "beyond it are refused). E.g. image:FP32:3,224,224 or "
                                            "tokens:INT64:-1:512 or seq:FP32:-1,8 (repeat per "
                                            "input).")] = None,
    output: Annotated[list[str] | None, _Opt(
        help="Output name of a PyTorch model (repeat per output: --output logits --output emb).")] = None,  # noqa: UP007
    weights: Annotated[Path | None, _Opt(help="State dict (.pt, torch.save(model.state_dict())) loaded "  # noqa: UP007
                                            "into the module package.module:factory returns.")] = None,
    precision: Annotated[str, _Opt(help="Comma-separated: fp32,fp16,int8.")] = "fp32",
    tolerance: Annotated[list[str] | None, _Opt(help="PRECISION=ATOL,RTOL[,MIN_COSINE], e.g. "  # noqa: UP007
                                                "fp16=1e-2,1e-2 or fp16=1e-2,1e-2,0.99 (defaults: fp32 "
                                                "1e-4,1e-3,0.999; fp16 5e-2,5e-2,0.99).")] = None,
    samples: Annotated[Path | None, _Opt(help="Extra verification samples (.npy/.npz).")] = None,  # noqa: UP007
    random_samples: Annotated[int, _Opt(help="Random verification samples.")] = 16,
    calibration: Annotated[Path | None, _Opt(help="INT8 calibration data (.npy/.npz).")] = None,  # noqa: UP007
    calibration_method: Annotated[str, _Opt(help="minmax, entropy or percentile.")] = "minmax",
    calibration_cache: Annotated[Path | None, _Opt(help="Calibration cache to reuse/write.")] = None,  # noqa: UP007
    int8_op_types: Annotated[str | None, _Opt(help="Only quantize these op types, e.g. MatMul,Conv.")] = None,  # noqa: UP007
    holdout: Annotated[Path | None, _Opt(help="Held-out set for the INT8 gate (.npz, 'labels' key).")] = None,  # noqa: UP007
    metric: Annotated[str, _Opt(help="top1, cosine or package.module:function.")] = "top1",
    budget: Annotated[float | None, _Opt(help="Max drop (top1, custom) or min value (cosine).")] = None,  # noqa: UP007
    gate_output: Annotated[str | None, _Opt(help="Output the gate measures (default: first).")] = None,  # noqa: UP007
    keep_going: Annotated[bool, _Opt(help="If a variant fails (gate, FP16 or INT8 not possible), still "
                                     "write the others.")] = False,
    max_batch_size: Annotated[int, _Opt(help="Triton max_batch_size.")] = 64,
    preferred_batch_size: Annotated[list[int] | None, _Opt(help="Dynamic batching preferred sizes.")] = None,  # noqa: UP007
    max_queue_delay_us: Annotated[int, _Opt(help="Dynamic batching queue delay.")] = 500,
    max_queue_size: Annotated[int, _Opt(help="Requests that may wait in the queue; more are refused "
                                        "at once (0: unbounded). Any queue bound makes Triton 2.51's "
                                        "batcher stall up to 500 ms (README).")] = 0,
    queue_timeout_us: Annotated[int, _Opt(help="Longest wait in the queue before a request is refused "
                                          "(0: none). Same cost as --max-queue-size.")] = 0,
    dynamic_batching: Annotated[bool, _Opt(help="Enable dynamic batching.")] = True,
    instances: Annotated[int, _Opt(help="Model instances.")] = 1,
    warmup_batch_size: Annotated[int, _Opt(help="Warm-up batch size (0: none).")] = 1,
    response_cache: Annotated[bool, _Opt(help="Enable Triton's response cache.")] = False,
    version_policy: Annotated[str | None, _Opt(help="latest:N, all or specific:1,3.")] = None,  # noqa: UP007
    trt: Annotated[bool, _Opt(help="Also build TensorRT engines (skipped without GPU).")] = False,
    trt_accelerator: Annotated[bool, _Opt(help="Add the ORT TensorRT accelerator to config.pbtxt.")] = False,
    progress: Annotated[bool, _Opt(help="Show progress bars.")] = True,
) -> None:
    """Convert a model into verified FP32/FP16/INT8 models of a Triton repository."""
    from tritonstack.convert.pipeline import ConvertOptions, convert_model
    from tritonstack.convert.quantize import CalibrationMethod, Int8Recipe
    from tritonstack.convert.spec import Batching, VersionPolicy

    _quiet_libraries()
    options = ConvertOptions(
        model=model, name=name, repository=repository, workdir=workdir, inputs=_inputs(input),
        output_names=output or None, weights=weights, precisions=_precisions(precision),
        tolerances=_tolerances(tolerance or []), samples=samples, random_samples=random_samples,
        calibration=calibration, calibration_cache=calibration_cache,
        recipe=Int8Recipe(method=_choice(CalibrationMethod, calibration_method, "--calibration-method"),
                          op_types=tuple(int8_op_types.split(",")) if int8_op_types else None),
        holdout=holdout, metric=metric, budget=budget, gate_output=gate_output,
        on_gate_failure="skip" if keep_going else "raise", max_batch_size=max_batch_size,
        batching=Batching(preferred_batch_sizes=tuple(preferred_batch_size or ()),
                          max_queue_delay_us=max_queue_delay_us, max_queue_size=max_queue_size,
                          queue_timeout_us=queue_timeout_us) if dynamic_batching else None,
        instance_count=instances, warmup_batch_size=warmup_batch_size or None, response_cache=response_cache,
        version_policy=VersionPolicy.parse(version_policy) if version_policy else None,
        trt_engine=trt, trt_accelerator=trt_accelerator, progress=progress,
    )
    _print(convert_model(options), repository, options.tolerances)


def _quiet_libraries() -> None:
    """Keep library chatter (ONNX Runtime, quantization hints) off the terminal; ours is printed."""
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)
    logging.getLogger().setLevel(logging.ERROR)


def _inputs(texts: list[str] | None) -> Any:
    from tritonstack.convert.samples import parse_input_specs

    return parse_input_specs(texts) if texts else None


def _precisions(text: str) -> Any:
    from tritonstack.convert.precision import parse_precisions

    return parse_precisions(text)


def _choice(enum: Any, value: str, option: str) -> Any:
    from tritonstack.errors import ConfigError

    try:
        return enum(value.lower())
    except ValueError as exc:
        raise ConfigError(f"{option} {value!r} is not one of {[e.value for e in enum]}") from exc


def _tolerances(items: list[str]) -> Any:
    from tritonstack.convert.precision import DEFAULT_TOLERANCES, Precision, Tolerance
    from tritonstack.errors import ConfigError

    tolerances = dict(DEFAULT_TOLERANCES)
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--tolerance {item!r} is not PRECISION=ATOL,RTOL; use e.g. fp16=1e-2,1e-2")
        tolerances[_choice(Precision, key, "--tolerance precision")] = Tolerance.parse(value)
    return tolerances


def _print(report: Any, repository: Path, tolerances: dict) -> None:
    from tritonstack.cli import console

    console.print(_table(report, tolerances))
    for note in _unjudged(report):
        console.print(f"[yellow]note:[/] {note}")
    for name, reason in report.rejected.items():
        console.print(f"[yellow]rejected[/] {name}: {reason}")
    for name, reason in report.skipped.items():
        console.print(f"[yellow]skipped[/] {name}: {reason}")
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    for v in report.variants:
        if v.previous_versions and v.version is not None:
            console.print(f"[yellow]note:[/] {_existed(v)}")
    console.print(f"written to {repository}")


def _existed(variant: Any) -> str:
    """The note on a version added to an existing model: what was kept and whether it is served."""
    text = (f"model {variant.name} already existed: added version {variant.version} next to version(s) "
            f"{', '.join(map(str, variant.previous_versions))} and rewrote its config.pbtxt, keeping the "
            "version policy, instances, batching and cache settings not given on this command line "
            "(pass a new --name for a separate model)")
    if variant.not_served:
        return f"{text}; {variant.not_served}"
    return (f"{text}; a server running now keeps serving the versions it loaded: "
            f"`tritonstack versions promote {variant.name} {variant.version}` serves this one")


def _table(report: Any, tolerances: dict) -> Any:
    """One row per variant: the figure its check judged and the verdict. Cells wrap, never cut."""
    from rich.table import Table

    table = Table("model", "precision", "version", "judged", "result")
    for column in table.columns:
        column.overflow = "fold"
    for v in report.variants:
        table.add_row(v.name, v.precision.value, str(v.version), *_verdict(v, tolerances.get(v.precision)))
    return table


def _verdict(variant: Any, tolerance: Any) -> tuple[str, str]:
    """(what was judged, result): the accuracy gate where there is one, else the tolerance check."""
    gate = variant.gate
    if gate is not None:
        if gate.kind == "min_value":
            figure, bound = f"mean {gate.metric} {gate.after:.4f}", f">= {gate.budget:g}"
        else:
            figure, bound = f"{gate.metric} {gate.before:.4f} -> {gate.after:.4f}", f"drop <= {gate.budget:g}"
        verdict = "passed" if gate.passed else "REJECTED"
        return f"gate on {gate.samples} held-out samples: {figure}", f"{verdict} ({bound})"
    if not variant.errors or tolerance is None:
        return "-", "-"
    worst = max(e.max_abs for e in variant.errors.values())
    cosine = min(e.min_cosine for e in variant.errors.values())
    bound = f"atol {tolerance.atol:g}, rtol {tolerance.rtol:g}"
    if tolerance.min_cosine is not None:
        bound += f", cosine >= {tolerance.min_cosine:g}"
    return f"vs source: max abs error {worst:.2e}, cosine {cosine:.4f}", f"passed ({bound})"


def _unjudged(report: Any) -> list[str]:
    """The measured differences no check judged (a gated variant's element-wise errors), labelled."""
    notes = []
    for v in report.variants:
        if v.gate is None or not v.errors_by_set:
            continue
        sets = ", ".join(f"{kind} inputs {max(e.max_abs for e in errors.values()):.2e}"
                         for kind, errors in v.errors_by_set.items() if errors)
        notes.append(f"{v.name}: max abs difference to the source ({sets}) is for information only: random "
                     "inputs can lie outside the calibration range; the gate decides")
    return notes


class _PlainHelp(TyperCommand):
    """Click's plain help for this many options: names and texts wrap at the terminal width and are
    never cut (rich's option table shortens them to `--calibration-me…` on 80 columns)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rich_markup_mode = None


def register(app: typer.Typer) -> None:
    """Add the `convert` command to the app."""
    app.command("convert", cls=_PlainHelp)(convert)
