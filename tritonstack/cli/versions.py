"""`tritonstack versions`: list, add, promote, canary and roll back model versions on a running Triton.

    tritonstack versions list digits_mlp
    tritonstack versions add digits_mlp build/digits_mlp/model.onnx   # copied in, not served yet
    tritonstack versions canary digits_mlp 2                    # serve 2 next to the current ones
    tritonstack versions promote digits_mlp 2                   # serve 2 only
    tritonstack versions rollback digits_mlp                    # back to what was served before

Every command takes --url (Triton's gRPC endpoint, host:port), --admin-key (or TRITONSTACK_ADMIN_KEY),
--repository (the folder the server serves) and, for a TLS server, --tls-root-cert [--tls-cert --tls-key].
Works against `tritonstack serve` and the NGC image.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from tritonstack.cli.tls_options import TlsCert, TlsKey, TlsRootCert

__all__ = ["register"]

versions_app = typer.Typer(no_args_is_help=True, help="Add, promote, canary and roll back model versions.")

Url = Annotated[str, typer.Option(help="Triton's gRPC endpoint, host:port (HTTP is off by default).")]
AdminKey = Annotated[str | None, typer.Option(  # noqa: UP007
    envvar="TRITONSTACK_ADMIN_KEY", help="Key of the restricted model-repository endpoint (prefer the "
    "TRITONSTACK_ADMIN_KEY variable or @FILE: a value here shows in `ps`).")]
Repository = Annotated[Path, typer.Option(help="The model repository the server serves.")]
Model = Annotated[str, typer.Argument(help="Model name.")]

_URL = "127.0.0.1:8001"
_TERMINATED: list[int] = []  # SIGTERM arrived during a version command
_REPOSITORY = Path("model_repository")


def _manager(url: str, admin_key: str | None, repository: Path,  # noqa: ANN202
             tls: tuple[Path | None, Path | None, Path | None]):
    from tritonstack.cli.admin_key import admin_key as key_of
    from tritonstack.cli.tls_options import client_tls
    from tritonstack.ops.versions import TritonControl, VersionManager

    return VersionManager(repository, TritonControl(url, admin_key=key_of(admin_key), tls=client_tls(*tls)))


@contextmanager
def _operation(name: str) -> Iterator[None]:
    """Tag the command's log lines with an operation id (the `request_id` of JSON log lines); SIGTERM
    interrupts like Ctrl-C, and an interrupted version change ends in ONE line saying what is served."""
    import secrets

    from tritonstack.logs import request_context
    from tritonstack.ops.versions import VersionChangeInterrupted

    with request_context(f"versions-{name}-{secrets.token_hex(4)}"), _sigterm_interrupts():
        try:
            yield
        except VersionChangeInterrupted as exc:
            import tritonstack.cli as cli

            sigterm = bool(_TERMINATED or getattr(cli, "_TERMINATED", None))
            line = f"{'terminated' if sigterm else 'interrupted'}: {exc}"
            cli._fail(line, "VersionChangeInterrupted", 143 if sigterm else 130,  # noqa: SLF001
                      json_lines=cli._json_errors(None), plain=line.replace("[", r"\["))  # noqa: SLF001


def _kept() -> None:
    """The change is made: a Ctrl-C or SIGTERM from now on no longer reports it as interrupted (its
    command still prints what is served and exits 0)."""
    from tritonstack.entry import finish

    finish()


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt (as Ctrl-C does) while the block runs, so it is undone alike."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _interrupt(signum: int, _frame: object) -> None:
        _TERMINATED.append(signum)
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:  # the CLI's own conversion is in place
        yield
        return
    saved = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, saved)


@versions_app.command("list")
def list_versions(model: Model, url: Url = _URL, admin_key: AdminKey = None,
                  repository: Repository = _REPOSITORY,
        tls_root_cert: TlsRootCert = None, tls_cert: TlsCert = None, tls_key: TlsKey = None) -> None:
    """Show every version: on disk, served by the policy, Triton's state."""
    from rich.table import Table

    from tritonstack.cli import console

    table = Table("version", "on disk", "served", "state", "reason")
    infos = _manager(url, admin_key, repository, (tls_root_cert, tls_cert, tls_key)).list(model)
    for info in infos:
        colour = "green" if info.state == "READY" else "yellow"
        reason = info.reason.splitlines()[0] if info.reason else ""
        table.add_row(str(info.version), "yes" if info.in_repository else "no",
                      "yes" if info.in_policy else "", f"[{colour}]{info.state}[/]", reason)
    console.print(table)
    warning = _stray_warning(model, infos)
    if warning:
        console.print(warning, markup=False, soft_wrap=True)


def _stray_warning(model: str, infos: list) -> str | None:
    """A line when Triton has a version READY that config.pbtxt does not list (issue 13 D1)."""
    stray = [i.version for i in infos if i.state == "READY" and not i.in_policy]
    if not stray:
        return None
    served = [i.version for i in infos if i.in_policy]
    redo = f"{served[-1]}" + "".join(f" --keep {v}" for v in served[:-1]) if served else "<version>"
    return (f"warning: versions {stray} are READY on Triton but config.pbtxt does not list them; a request "
            f"without a version may reach {max(stray)}: run `tritonstack versions promote {model} {redo}` to "
            "serve what config.pbtxt says")


@versions_app.command()
def add(model: Model, source: Annotated[Path, typer.Argument(help="Version folder or model file.")],
        version: Annotated[int | None, typer.Option(help="Version number (default: next).")] = None,  # noqa: UP007
        url: Url = _URL, admin_key: AdminKey = None, repository: Repository = _REPOSITORY,
        tls_root_cert: TlsRootCert = None, tls_cert: TlsCert = None, tls_key: TlsKey = None) -> None:
    """Copy a new version into the repository; it is not served until promoted."""
    tls = (tls_root_cert, tls_cert, tls_key)
    from tritonstack.cli import console

    with _operation("add"):
        number = _manager(url, admin_key, repository, tls).add(model, source, version=version)
        _kept()
    console.print(f"added {model} version {number} "
                  f"(not served; `tritonstack versions promote {model} {number}`)")


@versions_app.command()
def promote(model: Model, version: Annotated[int, typer.Argument(help="Version to serve.")],
            keep: Annotated[list[int] | None, typer.Option(  # noqa: UP007
                help="Also keep serving this version (repeatable).")] = None,
            url: Url = _URL, admin_key: AdminKey = None, repository: Repository = _REPOSITORY,
        tls_root_cert: TlsRootCert = None, tls_cert: TlsCert = None, tls_key: TlsKey = None) -> None:
    """Serve VERSION (and --keep versions); a version that fails to load is refused."""
    tls = (tls_root_cert, tls_cert, tls_key)
    from tritonstack.cli import console

    with _operation("promote"):
        served = _manager(url, admin_key, repository, tls).promote(model, version, keep=keep or ())
        _kept()
    console.print(f"{model} serves versions {served}")


@versions_app.command()
def canary(model: Model, version: Annotated[int, typer.Argument(help="Canary version.")],
           url: Url = _URL, admin_key: AdminKey = None, repository: Repository = _REPOSITORY,
        tls_root_cert: TlsRootCert = None, tls_cert: TlsCert = None, tls_key: TlsKey = None) -> None:
    """Serve VERSION next to the versions served now; split traffic with the client's TrafficSplit."""
    tls = (tls_root_cert, tls_cert, tls_key)
    from tritonstack.cli import console

    with _operation("canary"):
        served = _manager(url, admin_key, repository, tls).canary(model, version)
        _kept()
    console.print(f"{model} serves versions {served}; requests without a version go to {max(served)}, "
                  "so route with the client's TrafficSplit (explicit versions)")


@versions_app.command()
def rollback(model: Model, url: Url = _URL, admin_key: AdminKey = None,
             repository: Repository = _REPOSITORY,
        tls_root_cert: TlsRootCert = None, tls_cert: TlsCert = None, tls_key: TlsKey = None) -> None:
    """Serve again what was served before the last promote or canary."""
    tls = (tls_root_cert, tls_cert, tls_key)
    from tritonstack.cli import console

    with _operation("rollback"):
        served = _manager(url, admin_key, repository, tls).rollback(model)
        _kept()
    console.print(f"{model} rolled back; serves versions {served}")


def register(app: typer.Typer) -> None:
    """Add `tritonstack versions ...` to the app."""
    app.add_typer(versions_app, name="versions")
