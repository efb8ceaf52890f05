"""`tritonstack ops`: day-two helpers for drift monitoring.

    tritonstack ops drift-reference build/digits_mlp/2 --values x_train.npy --tensor features
    tritonstack ops drift-status --metrics-url http://127.0.0.1:8002/metrics
    tritonstack ops drift-tap digits_mlp --repository model_repository   # for native backends (NGC)
    tritonstack ops status --repository model_repository [--url 127.0.0.1:8001]   # gRPC endpoint
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tritonstack.cli.tls_options import TlsCert, TlsKey, TlsRootCert

if TYPE_CHECKING:
    from tritonstack.ops.status import DriftRow

__all__ = ["register"]

ops_app = typer.Typer(no_args_is_help=True, help="Day-two helpers: drift references and drift status.")


@ops_app.command("drift-reference")
def drift_reference(
    version_dir: Annotated[Path, typer.Argument(help="Version folder to write drift_reference.json into.")],
    values: Annotated[Path, typer.Option(help="Training values of the tensor, .npy [rows, features].")],
    tensor: Annotated[str, typer.Option(help="Monitored tensor name (model input or output).")],
    source: Annotated[str, typer.Option(help="'input' or 'output' (e.g. an encoder's embedding).")] = "input",
    window_rows: Annotated[int, typer.Option(help="Rows in the serving-time sliding window.")] = 1000,
) -> None:
    """Write the drift reference of a version folder (before `tritonstack versions add`)."""
    from tritonstack.cli import console
    from tritonstack.errors import ConfigError
    from tritonstack.ops.drift import REFERENCE_FILE, reference_from_training
    from tritonstack.ops.drift_reference_checks import check_reference_target, training_values

    if not version_dir.is_dir():
        raise ConfigError(f"{version_dir} is not a folder; pass the version folder that holds the model file")
    if source not in ("input", "output"):
        raise ConfigError(f"--source {source!r} is not a source; use 'input' or 'output'")
    x = training_values(values)
    if x.ndim == 2:
        check_reference_target(version_dir, tensor=tensor, source=source, features=x.shape[1])
    try:
        reference = reference_from_training(x, tensor=tensor, source=source, window_rows=window_rows)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot build a drift reference from {values}: {exc}") from exc
    path = reference.save(version_dir / REFERENCE_FILE)
    null = ", ".join(f"{k} {v:.4f}" for k, v in reference.null_scores.items())
    console.print(f"wrote {path} ({reference.features} features); unshifted windows score: {null}")
    from tritonstack.convert.manifest import record_file

    if record_file(version_dir, Path(path), by="tritonstack ops drift-reference"):
        console.print(f"recorded its SHA-256 in {version_dir / 'manifest.json'} (model files unchanged)")


@ops_app.command("drift-status")
def drift_status_command(
    metrics_url: Annotated[str, typer.Option(help="Triton's metrics endpoint.")] = "http://127.0.0.1:8002/metrics",
    json_lines: Annotated[bool, typer.Option("--json", help="One JSON object per model instance.")] = False,
) -> None:
    """Show the drift scores of every served version; exit 1 while any drift alert fires (cron, CI)."""
    import sys

    from tritonstack.ops.status import drift_status

    rows = drift_status(_read_metrics(metrics_url))
    (_print_drift_json if json_lines else _print_drift_table)(rows)
    alerting = [f"{r.model} v{r.version} {r.instance} ({', '.join(r.alerting)})" for r in rows if r.alerting]
    if alerting:
        from tritonstack.cli import err_console

        err_console.print(f"{len(alerting)} drift alert(s) firing: {'; '.join(alerting)}", soft_wrap=True)
        sys.exit(1)


def _read_metrics(metrics_url: str) -> str:
    """The text of a Prometheus metrics page; ConfigError for a URL that is not http(s)://,
    ServerUnavailableError when nothing answers HTTP there (the gRPC port, a closed port)."""
    import http.client
    import urllib.error
    import urllib.parse
    import urllib.request

    from tritonstack.errors import ConfigError, ServerUnavailableError

    parsed = urllib.parse.urlsplit(metrics_url)
    if parsed.scheme not in ("http", "https", "file") or (parsed.scheme != "file" and not parsed.netloc):
        raise ConfigError(f"--metrics-url {metrics_url!r} is not an http:// URL; pass Triton's metrics "
                          "endpoint, e.g. http://127.0.0.1:8002/metrics")
    try:
        with urllib.request.urlopen(metrics_url, timeout=10) as response:  # noqa: S310 - user's URL
            return response.read().decode()
    except (http.client.HTTPException, UnicodeDecodeError) as exc:
        raise ServerUnavailableError(f"{metrics_url} did not answer as an HTTP metrics page "
                                     f"({type(exc).__name__}); is it the gRPC port? pass Triton's metrics "
                                     "port (serve's default 8002)") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ServerUnavailableError(f"cannot read {metrics_url} ({exc}); is Triton running?") from exc


def _print_drift_json(rows: list) -> None:
    """One JSON object per row; `scores` is empty for a served version with no drift gauges; a score
    that is not a number (a NaN gauge) is null, so the line stays valid JSON."""

    from tritonstack.cli import console

    for row in rows:
        scores = {k: v if math.isfinite(v) else None for k, v in row.scores.items()}
        console.print_json(data={"model": row.model, "version": row.version, "instance": row.instance,
                                 "scores": scores, "scored": row.scored, "alerting": row.alerting},
                           indent=None)


#: table header -> drift gauge; short so that every column reads whole on an 80-column terminal
_SCORE_COLUMNS = {"psi": "psi_mean", "js": "js_mean", "mmd": "embedding_mmd"}


def _print_drift_table(rows: list) -> None:
    """A table with one line per served version (per instance when it publishes drift gauges), whole at 80
    columns: short headers explained under it, long names folded (never cut with '…')."""
    from rich.table import Table

    from tritonstack.cli import console

    table = Table()
    for header in ("model", "v", "inst", "rows", *_SCORE_COLUMNS, "alert"):
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(row.model, row.version, *_drift_cells(row))
    console.print(table)
    console.print(_legend(), soft_wrap=False)
    unscored = [f"{r.model} v{r.version} {_instance(r.model, r.instance)}"
                for r in rows if r.scores and not r.scored]
    if unscored:
        console.print("not scored yet (fewer rows than the drift reference's min_rows since the server "
                      f"started): {', '.join(unscored)}", soft_wrap=True)
    bare = [f"{r.model} v{r.version}" for r in rows if not r.scores]
    if bare:
        console.print(f"no drift gauges (no drift reference): {', '.join(bare)}", soft_wrap=False)
    if not rows:
        console.print("no model is served (no nv_inference_count on the page): is this Triton's metrics URL?")


def _drift_cells(row: DriftRow) -> list[str]:
    """The cells after model and version: instance, window rows, scores ('-' when absent), alert."""
    scores, alerting = row.scores, row.alerting
    if not scores:
        return ["-"] * (3 + len(_SCORE_COLUMNS))
    cells = [_instance(row.model, row.instance), f"{scores.get('window_rows', 0):.0f}"]
    cells += [_score(scores.get(gauge, math.nan)) for gauge in _SCORE_COLUMNS.values()]
    short = {gauge: header for header, gauge in _SCORE_COLUMNS.items()}
    if alerting:
        return [*cells, f"[red]{','.join(short.get(a, a) for a in alerting)}[/]"]
    return [*cells, "[green]ok[/]" if row.scored else "[yellow]too few rows[/]"]


def _score(value: float) -> str:
    """A score cell: 4 decimals, 'inf' for an infinite one (it alerts), '-' for none (NaN or absent)."""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4f}" if math.isfinite(value) else "-"


def _instance(model: str, instance: str) -> str:
    """The instance name without the `<model>_` prefix Triton gives it (`0_0`), else whole."""
    prefix = f"{model}_"
    return instance.removeprefix(prefix) if instance.startswith(prefix) and instance != prefix else instance


def _legend() -> str:
    """What the short headers stand for, with the alert thresholds."""
    from tritonstack.ops.status import ALERT_THRESHOLDS

    names = [f"{header} = {gauge}" + (f" (alert > {limit})" if (limit := ALERT_THRESHOLDS.get(gauge)) else "")
             for header, gauge in _SCORE_COLUMNS.items()]
    return f"v = version, inst = instance without its '<model>_' prefix, {', '.join(names)}"


@ops_app.command("status")
def status_command(
    repository: Annotated[Path, typer.Option(help="The served repository.")] = Path("model_repository"),
    url: Annotated[str | None, typer.Option(  # noqa: UP007
        help="Triton's gRPC endpoint (host:port), to show what it serves.")] = None,
    admin_key: Annotated[str | None, typer.Option(  # noqa: UP007
        envvar="TRITONSTACK_ADMIN_KEY", help="Key of the restricted model-repository endpoint.")] = None,
    allow_unverified: Annotated[bool, typer.Option(
        help="Exit 0 even if a served version is unverified or has no manifest.")] = False,
    tls_root_cert: TlsRootCert = None, tls_cert: TlsCert = None, tls_key: TlsKey = None,
) -> None:
    """Every version: Triton's state and whether its files are what was verified; exit 1 if one changed,
    if a version the config serves is not READY (with --url), or if a served version (READY with --url,
    else in the config's policy) is not verified (`versions add` ones with intact hashes excepted)."""
    import sys

    from rich.table import Table

    from tritonstack.cli import console
    from tritonstack.errors import ConfigError
    from tritonstack.ops.status import verification

    if not repository.is_dir():
        raise ConfigError(f"repository {repository} is not a folder; pass --repository")
    states, shown, cache, index = {}, {}, {}, []
    if url:
        from tritonstack.cli.admin_key import admin_key as key_of
        from tritonstack.cli.tls_options import client_tls
        from tritonstack.ops.status import cache_counts
        from tritonstack.ops.versions import TritonControl

        tls = client_tls(tls_root_cert, tls_cert, tls_key)
        control = TritonControl(url, admin_key=key_of(admin_key), tls=tls)
        index = control.index()
        states = {(s.get("name"), str(s.get("version"))): s.get("state", "") for s in index}
        shown = {(s.get("name"), str(s.get("version"))): _state_cell(s) for s in index}
        cache = cache_counts(control.statistics())
    table = Table("model", "version", "state", "verified", "cache hits/misses")
    checks = verification(repository)
    for (model, version), check in checks.items():
        colour = "green" if check.verified else ("red" if check.status.startswith("changed") else "yellow")
        state = shown.get((model, str(version)), "NOT LOADED") if url else "-"
        hits = cache.get((model, str(version)))
        table.add_row(model, str(version), state, f"[{colour}]{check.status}[/]",
                      f"{hits[0]}/{hits[1]}" if hits and any(hits) else "-")
    console.print(table)
    if any(c.status.startswith("changed") for c in checks.values()):
        sys.exit(1)
    if url:
        _refuse_not_ready(repository, {model for model, _ in checks}, index)
    _refuse_unverified(repository, checks, states if url else None, allow_unverified)


def _state_cell(entry: dict) -> str:
    """Triton's state of a version, with a short reason ("UNAVAILABLE (unloaded)"); long ones are in the
    failure line under the table."""
    state, reason = entry.get("state", ""), (entry.get("reason") or "").strip()
    return f"{state} ({reason})" if state and reason and len(reason) <= 24 and "\n" not in reason else state


def _refuse_not_ready(repository: Path, models: set[str], index: list[dict]) -> None:
    """Exit 1 with one line naming the versions the config serves that Triton failed to load; a version
    Triton has not tried to load yet (converted while it runs) is only noted."""
    import sys

    from tritonstack.cli import console, err_console
    from tritonstack.ops.status import not_loaded_yet, not_ready_served, served_by_policy

    served = served_by_policy(repository, models)
    waiting = not_loaded_yet(index, served)
    if waiting:
        console.print(f"not loaded yet: {', '.join(waiting)} (promote or canary to serve it: `tritonstack "
                      f"versions promote {waiting[0]}`)", soft_wrap=True, markup=False)
    problems = not_ready_served(index, served)
    if problems:
        err_console.print(f"served versions not READY: {', '.join(problems)}; read the server's log, fix the "
                          "model and load it again (`tritonstack versions promote`)", soft_wrap=True)
        sys.exit(1)


def _refuse_unverified(repository: Path, checks: dict, states: dict | None, allow: bool) -> None:
    """Exit 1 with one line naming the served versions nothing verified (unless `allow`)."""
    import sys

    from tritonstack.cli import err_console
    from tritonstack.ops.status import served_by_policy, unverified_served

    if states is None:
        served = served_by_policy(repository, {model for model, _ in checks})
    else:
        served = {(m, int(v)) for (m, v), state in states.items() if state == "READY" and str(v).isdigit()}
    risky = unverified_served(checks, served)
    if risky and not allow:
        err_console.print(f"served versions not verified: {', '.join(risky)}; rebuild them with `tritonstack "
                          "convert` (or pass --allow-unverified)", soft_wrap=True)
        sys.exit(1)


@ops_app.command("drift-tap")
def drift_tap(
    model: Annotated[str, typer.Argument(help="Model whose inputs to watch (it needs a drift reference).")],
    repository: Annotated[Path, typer.Option(help="The model repository.")] = Path("model_repository"),
) -> None:
    """Add `<model>_drift` and the ensemble `<model>_monitored` (for models on native backends)."""
    from tritonstack.cli import console
    from tritonstack.ops.drift_tap import write_drift_tap

    tap, ensemble = write_drift_tap(repository, model)
    console.print(f"wrote {tap} and {ensemble}; load them (explicit model control) and send requests to "
                  f"{ensemble}: same answers as {model}, drift gauges labelled model={model}")


def register(app: typer.Typer) -> None:
    """Add `tritonstack ops ...` to the app."""
    app.add_typer(ops_app, name="ops")
