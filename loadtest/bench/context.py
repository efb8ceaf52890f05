"""The shared state of one `tritonstack bench` run: repository, server, core split, measuring helpers.

    with Bench(BenchOptions(build_dir=Path("build/bench"), quick=True)) as bench:
        summary = bench.closed(lambda: triton_raw(bench.grpc_url, "digits_mlp", rows), concurrency=32)

One server (all available reference models, plus `digits_mlp_nobatch` for W5) is started once;
its start-to-ready time is W8. The server side runs on `split.server` CPUs, the load generator
(this process) on `split.generator`, for every workload and for both sides of every ratio.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from tritonstack.loadtest.cpu_use import Processes, tree
from tritonstack.loadtest.generator import Send, closed_loop
from tritonstack.loadtest.pinning import CoreSplit, pin_pid, pin_process_group
from tritonstack.loadtest.server_stats import ServerStatsPoller
from tritonstack.loadtest.stats import Recorder, summarize

from tritonstack.errors import LoadTestError

__all__ = ["CACHED", "IDENTITY", "NATIVE_MLP", "NOBATCH", "Bench", "BenchOptions"]

_LOGGER = logging.getLogger(__name__)
NOBATCH = "digits_mlp_nobatch"
CACHED = "digits_mlp_cached"
NATIVE_MLP = "digits_mlp_native"  # W10: the MLP kept on the native backend despite its drift reference
IDENTITY = "digits_identity"  # W5: an Identity ONNX model with the MLP's input, batching and config
SendFactory = Callable[[], contextlib.AbstractAsyncContextManager[Send]]
_NP = {
    "FP32": np.float32,
    "FP16": np.float16,
    "INT64": np.int64,
    "INT32": np.int32,
    "INT8": np.int8,
    "UINT8": np.uint8,
    "BOOL": np.bool_,
}


@dataclass(frozen=True, kw_only=True)
class BenchOptions:
    """What to build/serve and how long to measure."""

    build_dir: Path = Path("build/bench")
    repository: Path | None = None  # None: build the reference models into build_dir
    quick: bool = False
    rebuild: bool = False
    split: CoreSplit = field(default_factory=CoreSplit.default)

    @property
    def duration_s(self) -> float:
        """Measured seconds per load point."""
        return 1.5 if self.quick else 5.0

    @property
    def warmup_s(self) -> float:
        """Unrecorded seconds before each load point."""
        return 0.3 if self.quick else 1.0


class Bench:
    """Builds/assembles the repository, runs the server, measures; a context manager."""

    def __init__(self, options: BenchOptions) -> None:
        self.options = options
        self.split = options.split
        self.repository = Path(options.build_dir) / "repository"
        self.unavailable: dict[str, str] = {}  # model -> why it is missing
        self.build_s: dict[str, float] = {}
        self.server: Any = None
        self.start_to_ready_s: float | None = None
        self.python_server: Any = None  # W9/W10: the reference models on the Python runner (runners.py)
        self.python_start_to_ready_s: float | None = None
        self._affinity = frozenset(os.sched_getaffinity(0))

    # -- repository ---------------------------------------------------------------------------
    def source_repository(self) -> Path:
        """The given repository, or the reference models built into build_dir (reused while the
        code that builds and serves them is unchanged: a stamp of convert/, ops/ and serve/)."""
        if self.options.repository is not None:
            return Path(self.options.repository)
        from tritonstack.convert.reference import BUILDERS

        source = Path(self.options.build_dir) / "source_repository"
        stamp, wanted = source / ".built_with", _code_stamp()
        if self.options.rebuild or (source.exists() and (not stamp.exists() or stamp.read_text() != wanted)):
            shutil.rmtree(source, ignore_errors=True)
        for name in BUILDERS:
            if not (source / name / "config.pbtxt").exists():
                self._build(source, name)
        stamp.write_text(wanted)
        return source

    def _build(self, source: Path, name: str) -> None:
        from tritonstack.convert.reference import build_all

        start = time.perf_counter()
        try:
            build_all(source, Path(self.options.build_dir) / "work", [name])
        except Exception as exc:  # noqa: BLE001 - a model that cannot build is a row "n/a"
            self.unavailable[name] = f"build failed: {type(exc).__name__}: {exc}"[:300]
            _LOGGER.warning("building %s failed: %s", name, exc)
        self.build_s[name] = time.perf_counter() - start

    def assemble(self) -> Path:
        """Copy the source repository into build_dir/repository and add the no-batching MLP."""
        from tritonstack.model_config import read_config, write_config

        source = self.source_repository()
        shutil.rmtree(self.repository, ignore_errors=True)
        shutil.copytree(source, self.repository)
        mlp = self.repository / "digits_mlp"
        if (mlp / "config.pbtxt").exists() and not (self.repository / NOBATCH).exists():
            shutil.copytree(mlp, self.repository / NOBATCH)
            config = read_config(mlp / "config.pbtxt")
            config.name = NOBATCH
            config.ClearField("dynamic_batching")
            write_config(config, self.repository / NOBATCH / "config.pbtxt")
        if (mlp / "config.pbtxt").exists() and not (self.repository / CACHED).exists():
            shutil.copytree(mlp, self.repository / CACHED)  # C1: the same model with the response cache
            config = read_config(mlp / "config.pbtxt")
            config.name = CACHED
            config.response_cache.enable = True
            write_config(config, self.repository / CACHED / "config.pbtxt")
        if (mlp / "config.pbtxt").exists() and not (self.repository / IDENTITY).exists():
            _identity_model(mlp, self.repository / IDENTITY)
        if (mlp / "config.pbtxt").exists() and not (self.repository / NATIVE_MLP).exists():
            _native_copy(mlp, self.repository / NATIVE_MLP)
        return self.repository

    def cpu_sides(self, *, generator_in_process: bool) -> dict[str, Callable[[Processes], set[int]]]:
        """For `TreeCpu`: the server tree, and the load generator: this process's other descendants (and
        this process itself when it generates the load: `generator_in_process`), without any server tree."""
        servers = [s.pid for s in (self.server, self.python_server) if s is not None]
        me = os.getpid()

        def server(procs: Processes) -> set[int]:
            return tree(self.server.pid, procs)

        def generator(procs: Processes) -> set[int]:
            others = set().union(*(tree(pid, procs) for pid in servers))
            return tree(me, procs) - others - (set() if generator_in_process else {me})

        return {"server": server, "generator": generator}

    def models(self) -> list[str]:
        """Models of the bench repository (folders with a config.pbtxt)."""
        return sorted(p.parent.name for p in self.repository.glob("*/config.pbtxt"))

    def config(self, model: str) -> Any:
        """The ModelConfig of a model of the bench repository."""
        from tritonstack.model_config import read_config

        return read_config(self.repository / model / "config.pbtxt")

    def onnx_path(self, model: str) -> Path:
        """The ONNX file of the latest version of `model`."""
        versions = sorted(
            (p for p in (self.repository / model).iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
        )
        if not versions:
            raise LoadTestError(f"model {model!r} has no version folder in {self.repository}")
        name = self.config(model).default_model_filename or "model.onnx"
        return versions[-1] / name

    # -- server --------------------------------------------------------------------------------
    def start(self) -> Bench:
        """Assemble, start the server (timed: W8), pin it and this process."""
        from tritonstack.serve import EmbeddedServer, ServerConfig

        self.assemble()
        config = ServerConfig(
            repository=self.repository,
            ort_threads=len(self.split.server),
            ready_timeout_s=180,
            supervise=False,
            drift_gauges=False,  # the model alone: no drift-gauge work on the MLP (it has a reference)
            http=True,  # loopback, as gRPC: L4 runs Locust and perf_analyzer over both
        )  # no watcher thread in the generator
        start = time.perf_counter()
        self.server = EmbeddedServer(config).start()
        self.start_to_ready_s = time.perf_counter() - start
        pin_process_group(self.server.pid, self.split.server)
        pin_pid(os.getpid(), self.split.generator)
        return self

    def stop(self) -> None:
        """Stop the server and give this process back the CPUs it had."""
        for attribute in ("python_server", "server"):
            if getattr(self, attribute) is not None:
                getattr(self, attribute).stop()
                setattr(self, attribute, None)
        pin_pid(os.getpid(), self._affinity)

    def __enter__(self) -> Bench:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def grpc_url(self) -> str:
        """The bench server's gRPC host:port."""
        return self.server.grpc_url

    @property
    def http_address(self) -> str:
        """The bench server's HTTP host:port (no scheme)."""
        return self.server.http_address

    def ready_models(self) -> dict[str, str]:
        """model -> state as the server reports it."""
        return {s["name"]: s["state"] for s in self.server.model_states()}

    def require(self, model: str | None, what: str) -> str:
        """`model` if it is served and READY, else raise LoadTestError saying why not."""
        if model is None:
            raise LoadTestError(f"{what}: no such reference model in convert.reference.BUILDERS yet")
        if model in self.unavailable:
            raise LoadTestError(f"{model}: {self.unavailable[model]}")
        state = self.ready_models().get(model)
        if state != "READY":
            raise LoadTestError(f"{model} is {state or 'not in the repository'} on the bench server")
        return model

    # -- measuring ------------------------------------------------------------------------------
    def rows(self, model: str, count: int = 16, seed: int = 0) -> list[dict[str, np.ndarray]]:
        """`count` random single-row requests shaped and typed as the model's config says."""
        config, rng = self.config(model), np.random.default_rng(seed)
        out = []
        for _ in range(count):
            row = {}
            for tensor in config.input:
                dims = [1 if d < 0 else d for d in tensor.dims]
                shape = ([1] if config.max_batch_size > 0 else []) + dims
                dtype = _NP[_dtype_name(tensor.data_type)]
                row[tensor.name] = (rng.random(shape) * 8).astype(dtype)
            out.append(row)
        return out

    def closed(
        self,
        factory: SendFactory,
        *,
        concurrency: int,
        model: str | None = None,
        duration_s: float | None = None,
        also: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Closed-loop run through `factory()`; summary plus server statistics of `model` (and of
        the models in `also`, e.g. an ensemble's steps, under "server_<name>")."""
        recorder = Recorder()
        duration = duration_s or self.options.duration_s

        async def go() -> Any:
            async with factory() as send:
                return await closed_loop(
                    send,
                    concurrency=concurrency,
                    duration_s=duration,
                    warmup_s=self.options.warmup_s,
                    recorder=recorder,
                    max_requests=int(duration * 50_000),
                    completed_in_window=True,
                )

        watched = ([model] if model else []) + list(also)
        pollers = {m: ServerStatsPoller(self.grpc_url, m, interval_s=duration * 4) for m in watched}
        with contextlib.ExitStack() as stack:
            for poller in pollers.values():
                stack.enter_context(poller)
            run = asyncio.run(go())
        summary = summarize(recorder.frame(), duration_s=run.duration_s)
        summary["concurrency"] = concurrency
        for name, poller in pollers.items():
            if poller.total():
                summary["server" if name == model else f"server_{name}"] = poller.total()
        return summary


def _code_stamp() -> str:
    """Hash of the sources that decide what a built model looks like and how it is served."""
    import hashlib

    import tritonstack.convert
    import tritonstack.serve

    roots = [Path(tritonstack.convert.__file__).parent, Path(tritonstack.serve.__file__).parent]
    try:
        import tritonstack.ops

        roots.append(Path(tritonstack.ops.__file__).parent)
    except ImportError:
        pass
    digest = hashlib.sha256()
    for path in sorted(p for root in roots for p in root.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _dtype_name(data_type: int) -> str:
    from tritonclient.grpc import model_config_pb2

    return model_config_pb2.DataType.Name(data_type).removeprefix("TYPE_")


def _native_copy(mlp: Path, folder: Path) -> None:
    """W10: the MLP under another name, its config asking for the native backend (`serve.plan`)."""
    from tritonstack.serve.plan import RUNNER_PARAMETER

    from tritonstack.model_config import read_config, write_config

    shutil.copytree(mlp, folder)
    config = read_config(mlp / "config.pbtxt")
    config.name = folder.name
    config.parameters[RUNNER_PARAMETER].string_value = "native"
    write_config(config, folder / "config.pbtxt")


def _identity_model(mlp: Path, folder: Path) -> None:
    """`folder`: the MLP's config (batching, queue, instances) serving an ONNX Identity of its input,
    so W5 can compare the MLP with Triton's own per-request floor on the same input shape."""
    import onnx
    from onnx import TensorProto, helper

    from tritonstack.model_config import read_config, write_config

    config = read_config(mlp / "config.pbtxt")
    source = config.input[0]
    dims = ["N", *source.dims] if config.max_batch_size > 0 else list(source.dims)
    graph = helper.make_graph(
        [helper.make_node("Identity", [source.name], ["copy"])],
        "identity",
        [helper.make_tensor_value_info(source.name, TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("copy", TensorProto.FLOAT, dims)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (folder / "1").mkdir(parents=True)
    onnx.save(model, str(folder / "1" / "model.onnx"))
    config.name = IDENTITY
    del config.output[:]
    config.output.add(name="copy", data_type=source.data_type, dims=source.dims)
    config.ClearField("model_warmup")
    write_config(config, folder / "config.pbtxt")
