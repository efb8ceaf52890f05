"""`tritonstack loadtest`: Locust (or asyncio) load tests with a JSON + CSV + HTML report.

tritonstack loadtest steady --url 127.0.0.1:8001 --users 8 --duration 30
tritonstack loadtest open --url 127.0.0.1:8001 --rate 500 --arrival poisson
tritonstack loadtest ramp --repository model_repository --users 24 --step-users 4 --step 5 --duration 30
tritonstack loadtest spike --url 127.0.0.1:8001 --workers 2          # Locust master + 2 workers
tritonstack loadtest steady --url 127.0.0.1:8001 --users 32 --engine asyncio --referee
tritonstack loadtest steady --url 127.0.0.1:8001 --model gru --shape tokens:32 --inputs samples.npz

Before any load: the scenario and options are checked, then the server is asked for the model (and
version), and the inputs are built; any problem is one line and exit 2, with no report written.
After a Locust run (gevent), the process always leaves through `os._exit`, error or not: a gRPC
channel finalised at interpreter exit under gevent can block forever.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from tritonstack.cli.finite import finite

__all__ = ["check_options", "check_out", "register"]


def loadtest(
    scenario: Annotated[str, typer.Argument(help="steady | ramp | spike | open")],
    url: Annotated[str | None, typer.Option(help="gRPC host:port of a running server.")] = None,
    repository: Annotated[
        Path | None, typer.Option(help="Start an embedded server on this repository instead of --url.")
    ] = None,
    model: Annotated[str, typer.Option(help="Model to load.")] = "digits_mlp",
    model_version: Annotated[
        str, typer.Option("--model-version", help="Model version (default: the server's choice).")
    ] = "",
    inputs: Annotated[
        Path | None,
        typer.Option(help="An .npz of real samples: one array per input name, samples on the first axis."),
    ] = None,
    shape: Annotated[
        list[str] | None,
        typer.Option(help="Dims of a dynamic (-1) input without the batch axis, NAME:d1,d2; repeatable."),
    ] = None,
    users: Annotated[
        int, typer.Option(help="Users (closed loop: requests in flight); ramp: its ceiling; open: each "
                          "keeps at most 64 requests in flight.", min=1, max=1000)
    ] = 8,
    duration: Annotated[float, typer.Option(help="Seconds.", **finite("--duration", 0.5, 3600))] = 10.0,
    rate: Annotated[
        float, typer.Option(help="Open loop: total requests per second.", **finite("--rate", 0.1))
    ] = 200.0,
    arrival: Annotated[str, typer.Option(help="Open loop: poisson | constant.")] = "poisson",
    step_users: Annotated[
        int, typer.Option(help="Ramp: users added every --step, up to --users.", min=1)
    ] = 4,
    step: Annotated[
        float,
        typer.Option(
            help="Ramp: seconds per step; the ramp ends at --duration (a longer step is cut there). Locust "
            "changes the user count on its 1 s tick, so a step lands on the next whole second.",
            **finite("--step", 0.5),
        ),
    ] = 2.0,
    spike_users: Annotated[
        int, typer.Option(help="Spike: users during the spike, above --users.", min=1)
    ] = 32,
    spike_at: Annotated[
        float,
        typer.Option(help="Spike: starts at this second, before --duration.", **finite("--spike-at", 0)),
    ] = 3.0,
    spike_duration: Annotated[
        float,
        typer.Option(
            "--spike-s", help="Spike: seconds; the spike must end by --duration.", **finite("--spike-s", 0.1)
        ),
    ] = 2.0,
    workers: Annotated[
        int, typer.Option(help="Locust distributed mode: worker processes (0: local).", min=0, max=16)
    ] = 0,
    engine: Annotated[str, typer.Option(help="locust | asyncio (steady and open only).")] = "locust",
    protocol: Annotated[
        str,
        typer.Option(
            help="grpc | http: what the Locust users send the load over. http: Triton's HTTP endpoint "
            "(binary tensors), ~2.5x less load-generator CPU per request than gRPC under gevent; the checks, "
            "statistics and model config still use gRPC. With --url it needs --http-url; with "
            "--repository the started server opens its HTTP endpoint on loopback."
        ),
    ] = "grpc",
    http_url: Annotated[
        str | None,
        typer.Option(help="With --url and --protocol http: host:port of the same server's HTTP endpoint."),
    ] = None,
    timeout_s: Annotated[
        float,
        typer.Option(
            "--timeout-s",
            help="Deadline of each request (s), 0.001 to 3600: gRPC deadlines have millisecond "
            "resolution. It counts from when a request was due (an open loop's scheduled instant): one not "
            "answered by then, or whose answer the load generator read later, fails (DEADLINE_EXCEEDED) "
            "and counts as an error. "
            "Deadlines that expire on many requests in flight can crash Triton 2.51's gRPC server (SIGSEGV, "
            "triton-inference-server/server#7368; seen at 1-5 ms): keep it well above the model's p99.",
            **finite("--timeout-s", example=10),
        ),
    ] = 10.0,
    out: Annotated[
        Path,
        typer.Option(
            help="Report folder. A run whose report is already there (same scenario) is refused before any "
            "load, unless --overwrite."
        ),
    ] = Path("reports/loadtest"),
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a report of the same scenario already in --out.")
    ] = False,
    referee: Annotated[
        bool,
        typer.Option(
            help="Run perf_analyzer on the same model at the same concurrency (steady) or request "
            "rate (open) and print both side by side."
        ),
    ] = False,
    max_error_rate: Annotated[
        float,
        typer.Option(
            "--max-error-rate",
            help="Exit 1 (report still written) when more than this percentage of requests failed.",
            **finite("--max-error-rate", 0, 100),
        ),
    ] = 1.0,
) -> None:
    """Run one load scenario and write <out>/<scenario>.json, _windows.csv, _server.csv and .html
    (with --workers: <out>/<scenario>_distributed.json and so on, next to Locust's CSV files and log).

    Exit 0; 1 when more than --max-error-rate % of requests failed or the referee failed (the report
    is written); 2 on bad input (nothing written); 130 on Ctrl-C (143 on SIGTERM) during the load:
    the load stops and the report of what was measured is written, marked interrupted.
    """
    from tritonstack.loadtest.inputs import parse_shapes
    from tritonstack.loadtest.scenario import Scenario

    spec = Scenario(
        kind=scenario,
        model=model,
        version=model_version,
        inputs_path=str(inputs) if inputs else "",
        shapes=parse_shapes(shape or []),
        users=users,
        duration_s=duration,
        rate_rps=rate,
        arrival=arrival,
        step_users=step_users,
        step_s=step,
        spike_users=spike_users,
        spike_at_s=spike_at,
        spike_s=spike_duration,
        timeout_s=timeout_s,
    )
    check_options(spec, url=url, repository=repository, engine=engine, referee=referee, inputs=inputs,
                  protocol=protocol, http_url=http_url, workers=workers)
    check_out(out)
    with _reserve_report(out, _report_name(spec, workers)), _exit_hard_after_gevent():
        _check_no_report(out, _report_name(spec, workers), overwrite=overwrite)
        with _server(repository, http=protocol == "http") as server:
            target = url or server.grpc_url
            if protocol == "http":
                import dataclasses

                spec = dataclasses.replace(spec, http_url=http_url or server.http_address)
            from tritonstack.loadtest.interrupt import StopOnSignals
            from tritonstack.loadtest.preflight import preflight
            from tritonstack.loadtest.server_death import ServerDeathWatch

            shown = url or f"the server started on {repository}"
            info, rows = preflight(spec, target, shown=shown, own_server=server is not None)
            death = ServerDeathWatch(server)
            with StopOnSignals() as stop, _server_named(target, shown):  # Ctrl-C in the referee too
                result = _run(spec, target, workers=workers, engine=engine, out=out, should_stop=stop.is_set,
                              armed=death.arm, hurry=stop.repeated)
                death.load_ended()
                load_stopped = stop.is_set()
                if referee and not load_stopped:
                    _referee(result, spec, target, info, rows)
            _describe_inputs(result, spec, rows)
            from tritonstack.loadtest.report import busy_generator_note, schedule_note

            late = schedule_note(result.summary, result.scenario, interrupted=load_stopped)
            result.notes.extend(filter(None, [late, busy_generator_note(result.summary)]))
            death.note(result)
            if load_stopped:
                result.mark_interrupted(stop.after_s or 0.0, signal.Signals(stop.signum).name)
            elif stop.is_set():
                result.mark_referee_interrupted(signal.Signals(stop.signum).name)
        code = _finish(result, out, max_error_rate_pct=max_error_rate, interrupted_code=stop.exit_code)
        if code:
            sys.exit(code)


def check_options(spec, *, url, repository, engine: str, referee: bool, inputs,  # noqa: ANN001
                  protocol: str = "grpc", http_url: str | None = None, workers: int = 0) -> None:
    """Option errors that need no server, before one is started or asked."""
    from tritonstack.errors import ConfigError
    from tritonstack.loadtest.scenario import Kind

    if (url is None) == (repository is None):
        raise ConfigError("pass exactly one of --url (a running server) or --repository (start one)")
    _check_protocol(protocol, http_url, url=url, engine=engine)
    if protocol == "http":
        from tritonstack.loadtest.http_wire import check_http_path

        check_http_path(spec.model, spec.version)
    if url is not None:
        from tritonstack.serve.control import check_grpc_url

        check_grpc_url(url)
    elif Path(repository).is_dir():
        _check_in_repository(Path(repository), spec.model, spec.version)
    _check_engine(engine, spec.kind, workers)
    if referee and spec.kind not in (Kind.STEADY, Kind.OPEN):
        raise ConfigError("--referee needs a fixed load: use it with the steady or open scenario")
    if inputs is not None and Path(inputs).is_dir():
        raise ConfigError(f"--inputs {inputs} is a folder; pass an .npz file with one array per input")
    if inputs is not None and not Path(inputs).is_file():
        raise ConfigError(f"--inputs {inputs} does not exist; pass an .npz with one array per input")


def _check_engine(engine: str, kind, workers: int) -> None:  # noqa: ANN001
    from tritonstack.errors import ConfigError
    from tritonstack.loadtest.scenario import Kind

    if engine not in ("locust", "asyncio"):
        raise ConfigError(f"--engine {engine!r}: use locust or asyncio")
    if engine == "asyncio" and workers:
        raise ConfigError(f"--workers {workers} runs Locust worker processes; drop --engine asyncio (one "
                          "process) or --workers")
    if engine == "asyncio" and kind not in (Kind.STEADY, Kind.OPEN):
        raise ConfigError(f"--engine asyncio runs steady and open only; use --engine locust for {kind.value}")


def _check_protocol(protocol: str, http_url: str | None, *, url: str | None, engine: str) -> None:
    from tritonstack.errors import ConfigError

    if protocol not in ("grpc", "http"):
        raise ConfigError(f"--protocol {protocol!r}: use grpc or http")
    if protocol == "grpc":
        if http_url is not None:
            raise ConfigError("--http-url is where --protocol http sends the load; add --protocol http")
        return
    if engine != "locust":
        raise ConfigError("--protocol http is for the Locust engine; the asyncio engine sends gRPC")
    if url is None and http_url is not None:
        raise ConfigError("--http-url is for a running server (--url); with --repository the started "
                          "server opens its own HTTP endpoint on loopback")
    if url is not None and http_url is None:
        raise ConfigError("--protocol http with --url needs --http-url host:port, the same server's HTTP "
                          "endpoint (e.g. 127.0.0.1:8000; tritonstack serve --http opens it)")
    if http_url is not None:
        from tritonstack.serve.control import split_host_port

        if "://" in http_url:
            raise ConfigError(f"--http-url {http_url!r}: pass host:port (no scheme), e.g. "
                              f"{http_url.split('://', 1)[1].rstrip('/')}")
        try:
            split_host_port(http_url)
        except ValueError as exc:  # noqa: B904 - one line for the user
            raise ConfigError(f"--http-url {exc}; e.g. 127.0.0.1:8000") from None


def check_out(out: Path) -> None:
    """ConfigError (one line) when the report folder `out` cannot be made, before any load: the folders
    it needs are made and removed again, so a refused or failed run leaves nothing behind."""
    from tritonstack.errors import ConfigError

    if out.is_dir():
        return
    missing = [p for p in (out, *out.parents) if not p.exists()]
    try:
        if out.exists():
            raise FileExistsError(f"{out} exists and is not a folder")
        out.mkdir(parents=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"--out {out}: cannot create the report folder: {reason}") from None
    finally:
        for made in missing:  # deepest first, all empty
            if made.is_dir():
                made.rmdir()


def _report_name(spec, workers: int) -> str:  # noqa: ANN001
    """The name the run's report files start with (as the runners name their result)."""
    return f"{spec.kind.value}_distributed" if workers else spec.kind.value


@contextlib.contextmanager
def _reserve_report(out: Path, name: str):  # noqa: ANN202
    """Hold an exclusive lock on the report `out/name` for the whole run: a second run started into the
    same --out with the same scenario is refused in one line instead of both passing the "already holds
    a report" check and overwriting each other. The lock file lives in this user's own folder of the
    temp folder (none in --out, which may not exist yet; not the temp folder itself, where another
    user could plant it or a symlink: outsider round 6) and the kernel releases it when the process
    ends, however it ends."""
    import fcntl
    import hashlib
    import os

    from tritonstack.errors import ConfigError

    key = hashlib.sha256(str((out / name).resolve()).encode()).hexdigest()[:20]
    path = _own_lock_folder() / f"loadtest-{key}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot open the lock file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "r+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"--out {out}: another loadtest is writing a {name} report there right now; wait for it "
                "to finish or pass another --out"
            ) from None
        yield


def _own_lock_folder() -> Path:
    """<temp>/tritonstack-<uid>, made 0700 by this user; when another user made that name first (or
    opened it to others), ~/.cache/tritonstack instead; refused when neither is this user's alone."""
    import os
    import tempfile

    from tritonstack.errors import ConfigError

    shared_temp = Path(tempfile.gettempdir()) / f"tritonstack-{os.getuid()}"
    home = Path.home() / ".cache" / "tritonstack"
    if _private_folder(shared_temp, parents=False):
        return shared_temp
    if _private_folder(home, parents=True):
        return home
    raise ConfigError(f"{shared_temp} and {home} are not folders of this user closed to others (another "
                      "user made them?); remove them, or set TMPDIR to a folder of your own")


def _private_folder(folder: Path, *, parents: bool) -> bool:
    """Whether `folder` is (made, if missing) a real folder of this user that no one else can enter."""
    import os
    import stat

    try:
        folder.mkdir(mode=0o700, parents=parents)
    except FileExistsError:
        pass
    except OSError:
        return False
    try:
        info = folder.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


def _check_no_report(out: Path, name: str, *, overwrite: bool) -> None:
    """ConfigError (one line) when `out` already holds this scenario's report and --overwrite is not
    given: two runs never silently replace each other."""
    from tritonstack.errors import ConfigError

    existing = out / f"{name}.json"
    if existing.exists() and not overwrite:
        raise ConfigError(
            f"--out {out} already holds a {name} report ({existing}); pass --overwrite to replace it, "
            "or another --out"
        )


def _describe_inputs(result, spec, rows) -> None:  # noqa: ANN001
    """Record what was sent (shapes, datatypes) and any --inputs cast, in the report and its notes."""
    from tritonstack.loadtest.inputs import cast_notes, nonfinite_notes, sent_inputs_text

    result.scenario["sent"] = sent_inputs_text(rows)
    result.notes.extend(cast_notes(spec.inputs_path, rows))
    result.notes.extend(nonfinite_notes(spec.inputs_path))


def _check_in_repository(repository: Path, model: str, version: str) -> None:
    """ConfigError before a server is started on `repository` when it has no such model (or version)."""
    from tritonstack.errors import ConfigError
    from tritonstack.loadtest.tune_server import model_folder

    folder = model_folder(repository, model)
    if version.isdigit() and not (folder / version).is_dir():
        present = ", ".join(sorted((p.name for p in folder.iterdir() if p.name.isdigit()), key=int)) or "none"
        raise ConfigError(
            f"model {model!r} has no version {version} in {repository} (versions present: {present}); "
            "check --model-version"
        )


@contextlib.contextmanager
def _server_named(url: str, shown: str):  # noqa: ANN202
    """Errors raised inside name the server as `shown` (a temporary server's port means nothing)."""
    from tritonstack.errors import TritonStackError
    from tritonstack.loadtest.preflight import name_server

    try:
        yield
    except TritonStackError as exc:
        if url == shown or url not in str(exc):
            raise
        raise type(exc)(name_server(str(exc), url, shown)) from exc


@contextlib.contextmanager
def _exit_hard_after_gevent():  # noqa: ANN202
    """Once Locust (gevent) is loaded, leave through os._exit, after an error too: the error is
    printed as one line (as the CLI does), output flushed, no interpreter-exit hooks run."""
    from tritonstack.errors import TritonStackError

    code = 0
    try:
        yield
    except SystemExit as exc:
        if "gevent" not in sys.modules:
            raise
        code = exc.code if isinstance(exc.code, int) else 1
    except TritonStackError as exc:
        if "gevent" not in sys.modules:
            raise
        from tritonstack.cli import err_console

        err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        code = 2
    except KeyboardInterrupt:  # Ctrl-C (or SIGTERM, made one by the CLI) outside the load itself
        if "gevent" not in sys.modules:
            raise
        from tritonstack.cli import _TERMINATED, err_console

        err_console.print("terminated" if _TERMINATED else "interrupted")
        code = 143 if _TERMINATED else 130
    except BaseException:
        if "gevent" not in sys.modules:
            raise
        import traceback

        traceback.print_exc()
        code = 1
    if "gevent" in sys.modules:
        _exit_now(code)


def _exit_now(code: int) -> None:
    """Leave without interpreter-exit hooks (after a gevent-patched Locust run, error or not)."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@contextlib.contextmanager
def _server(repository: Path | None, *, http: bool = False):  # noqa: ANN202
    """The embedded server started on `repository` (None with --url); `http`: its HTTP endpoint on too."""
    if repository is None:
        yield None
        return
    from tritonstack.serve import EmbeddedServer, ServerConfig

    with EmbeddedServer(ServerConfig(repository=repository, supervise=False, http=http)) as server:
        yield server


def _run(spec, url: str, *, workers: int, engine: str, out: Path, should_stop, armed,  # noqa: ANN001, ANN202
         hurry=None):  # noqa: ANN001
    """Run the load; `armed()` is called once the engine's modules are loaded (Locust: gevent), before it."""
    if engine == "locust" and not workers:  # Locust in this process; with --workers it runs in others, and
        import locust  # noqa: F401 - gevent here would make each blocking gRPC statistics poll stall it all
    armed()
    if workers:
        from tritonstack.loadtest.locust_runner import run_distributed

        return run_distributed(spec, url, workers=workers, out_dir=out, should_stop=should_stop, hurry=hurry)
    if engine == "asyncio":
        from tritonstack.loadtest.asyncio_runner import run_asyncio

        return run_asyncio(spec, url, should_stop=should_stop)
    from tritonstack.loadtest.locust_runner import run_local

    return run_local(spec, url, should_stop=should_stop)


def _shapes(info, rows) -> dict[str, list[int]]:  # noqa: ANN001
    """Per input, the shape of the first request sent, without the batch axis (perf_analyzer --shape)."""
    return {n: list(a.shape[1:] if info.batched else a.shape) for n, a in rows[0].items()}


def _referee(result, spec, url: str, info, rows) -> None:  # noqa: ANN001
    """perf_analyzer on the same model: same concurrency (steady) or same rate (open loop), sending the
    load's own prepared requests (random data of their shapes when they are too big for its JSON)."""
    from tritonstack.errors import TritonStackError
    from tritonstack.loadtest.perf_analyzer import PerfAnalyzerRun, compare, input_data, run_perf_analyzer
    from tritonstack.loadtest.scenario import Kind

    rate = spec.rate_rps if spec.kind is Kind.OPEN else None
    shapes, data = _shapes(info, rows), input_data(rows, batched=info.batched)
    try:
        figures = run_perf_analyzer(
            PerfAnalyzerRun(
                url=spec.http_url or url,
                protocol="http" if spec.http_url else "grpc",
                model=spec.model,
                concurrency=spec.users,
                shapes=shapes,
                input_data=data,
                request_rate=rate,
                distribution=spec.arrival.value,
            )
        )
    except TritonStackError as exc:  # the load test's own figures stand; the report says why
        result.fail_referee(" ".join(str(exc).split()))
        return
    if data is None:
        result.notes.append(f"the referee (perf_analyzer) sent random data of the shapes {shapes}, not the "
                            "load's requests (too big for its JSON input): a model whose time depends on the "
                            "values may differ, and one that limits them (an embedding) may refuse them")
    side = compare(result.summary, figures)
    load = {"request_rate": rate} if rate else {"concurrency": spec.users}
    result.referee = {**load, "protocol": "http" if spec.http_url else "grpc",
                      **{f"{k} ({who})": v for k, row in side.items() for who, v in row.items()}}
    from tritonstack.loadtest.report import referee_meaning

    result.referee["meaning"] = referee_meaning(result.summary, side["throughput_rps"]["ratio"],
                                                side["p50_ms"]["ratio"])


def _finish(result, out: Path, *, max_error_rate_pct: float, interrupted_code: int) -> int:  # noqa: ANN001
    """Write the report and print its lines; the exit code (0, 1: too many errors or the referee
    failed, 130/143: interrupted)."""
    from tritonstack.cli import err_console
    from tritonstack.errors import LoadTestError
    from tritonstack.loadtest.report import write_report

    s, after = result.summary, result.interrupted_after_s
    if not s["count"]:
        for made in out.glob(f"{result.name}_locust*"):  # Locust's own files of a distributed run: no report
            made.unlink(missing_ok=True)
        if after is not None:
            err_console.print(f"interrupted after {after:.1f} s before any request finished; nothing written")
            return interrupted_code
        why = "; ".join(result.notes) or _none_ended(result.scenario)
        raise LoadTestError(f"{result.name}: no request completed, nothing written: {why}")
    paths = write_report(result, out)
    if after is not None:  # one line: the notes stay in the report, counted here
        written, notes = paths["json"], sum(not n.startswith("interrupted by") for n in result.notes)
        said = f" ({notes} note{'s' if notes != 1 else ''} in it)" if notes else ""
        err_console.print(f"interrupted after {after:.1f} s of load; partial report written to "
                          f"{written}{said}", soft_wrap=True)
        return interrupted_code
    _print_summary(result, paths)
    if s.get("referee_interrupted_by"):
        err_console.print(f"interrupted during the referee; the load's report is complete: {paths['json']}",
                          soft_wrap=True)
        return interrupted_code
    return _verdict(result, max_error_rate_pct)


def _per_s(rate: float) -> str:
    """A rate for the console: whole numbers, but two digits below 10 (0.5, not 0)."""
    return f"{rate:.0f}" if rate >= 10 else f"{rate:.2g}"


def _print_notes(result) -> None:  # noqa: ANN001
    """Every note of the report, but the referee's failure or an interruption: their own line follows."""
    from tritonstack.cli import console

    for note in result.notes:
        if not note.startswith(("the referee (perf_analyzer) failed", "interrupted by")):
            console.print(f"note: {note}", soft_wrap=True)


def _none_ended(scenario: dict) -> str:
    """Why a run may have no finished request when nothing else says why."""
    duration_s, rate = scenario.get("duration_s"), scenario.get("rate_rps")
    if scenario.get("kind") != "open" or not rate:
        return f"none ended within --duration {duration_s} s"
    due = rate * duration_s
    return (f"none ended within --duration {duration_s} s; --rate {rate:g} schedules {due:g} request"
            f"{'' if due == 1 else 's'} on average, and a Poisson schedule that sparse may hold none: raise "
            "--rate or --duration")


def _verdict(result, max_error_rate_pct: float) -> int:  # noqa: ANN001
    """1 with one stderr line when too many requests failed or the referee failed; else 0."""
    from tritonstack.cli import err_console

    s, code = result.summary, 0
    if (result.referee or {}).get("failed"):
        err_console.print(f"referee failed: {result.referee['failed']}; the load test's report is kept")
        code = 1
    if 100 * s["error_rate"] > max_error_rate_pct:
        err_console.print(
            f"{s['errors']} of {s['count']} requests failed ({100 * s['error_rate']:.1f}%), "
            f"over the --max-error-rate {max_error_rate_pct:g}%"
        )
        code = 1
    return code


def _print_summary(result, paths: dict[str, Path]) -> None:  # noqa: ANN001
    from tritonstack.cli import console

    s = result.summary
    console.print(
        f"{result.name}: {s['count']} requests, {s['errors']} failed, "
        f"{_per_s(s['throughput_rps'])} req/s, p50 {s['p50_ms'] or 0:.2f} ms, "
        f"p90 {s['p90_ms'] or 0:.2f} ms, p99 {s['p99_ms'] or 0:.2f} ms (failures included)"
    )
    if result.referee and not result.referee.get("failed"):
        r = result.referee
        load = f"rate {r['request_rate']:g}/s" if r.get("request_rate") else f"concurrency {r['concurrency']}"
        load += f" over {r.get('protocol', 'grpc')}"
        console.print(
            f"referee at {load}: throughput ours {r['throughput_rps (ours)']:.0f} "
            f"vs perf_analyzer {r['throughput_rps (perf_analyzer)']:.0f} req/s "
            f"(x{r['throughput_rps (ratio)'] or 0:.2f}, within 15%: {r['throughput_rps (within)']}); "
            f"p50 ours {r['p50_ms (ours)']:.2f} vs {r['p50_ms (perf_analyzer)']:.2f} ms "
            f"(x{r['p50_ms (ratio)'] or 0:.2f}, within 15%: {r['p50_ms (within)']}); "
            f"p99 ours {r['p99_ms (ours)']:.2f} vs {r['p99_ms (perf_analyzer)']:.2f} ms"
        )
        if r.get("meaning"):  # one line: what a gap between the engines means
            console.print(f"referee: {r['meaning']}", soft_wrap=True)
    if result.scenario.get("sent"):
        console.print(f"sent: {result.scenario['sent']}", soft_wrap=True)
    for row in s.get("error_breakdown") or []:
        status = f" [{row['status']}]" if row.get("status") else ""
        console.print(f"  {row['count']} x {row['error']}{status}: {row['first_message']}", soft_wrap=True)
    _print_notes(result)
    console.print("report: " + ", ".join(str(p) for p in paths.values()))


def register(app: typer.Typer) -> None:
    """Add `loadtest` to the CLI."""
    app.command("loadtest")(loadtest)
