"""Shared fixtures: the reference repository and ONE real embedded Triton server per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tmp_path_factory(tmp_path_factory: pytest.TempPathFactory) -> pytest.TempPathFactory:
    """pytest's factory, with its folders reachable by the unprivileged user tritonserver runs as
    when the tests run as root (pytest makes them 0700): base folders 0711, each new folder 0755."""
    if os.geteuid() != 0:
        return tmp_path_factory
    base = tmp_path_factory.getbasetemp()
    for folder in (base.parent, base) if base.parent.name.startswith("pytest-of-") else (base,):
        os.chmod(folder, 0o711)
    original = tmp_path_factory.mktemp

    def mktemp(basename: str, numbered: bool = True) -> Path:
        path = original(basename, numbered)
        os.chmod(path, 0o755)
        return path

    tmp_path_factory.mktemp = mktemp  # type: ignore[method-assign]
    return tmp_path_factory


@pytest.fixture(scope="session")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository with the reference models, built for this test session."""
    from tritonstack.convert.reference import build_all

    root = tmp_path_factory.mktemp("repo")
    build_all(root / "model_repository", root / "build", ["digits_mlp"])
    return root / "model_repository"


@pytest.fixture(scope="session")
def server(repository: Path) -> Iterator:
    """The real tritonserver from nvidia-pytriton on free loopback ports, run as `tritonstack serve` runs it:
    restarted on the same ports if it dies. Triton 2.51 segfaults now and then when many in-flight gRPC
    calls are dropped at once (upstream #7368; README "Known crashes"), e.g. by a test that SIGKILLs a
    Locust run mid-load; without the restart one such crash failed every later test on this server (CI,
    2026-12-04). Restarts are printed at the end of the session with their logs (shown with `pytest -s`;
    the crash logs stay in ~/.local/state/tritonstack/crash-logs)."""
    from tritonstack.serve import EmbeddedServer, ServerConfig

    with EmbeddedServer(ServerConfig(repository=repository, ort_threads=1, restart_on_crash=True)) as running:
        yield running
        events = running.watchdog.events if running.watchdog is not None else []
        for event in events:
            print(f"\nsession server restarted after exit code {event.exit_code}; log: {event.log}")


@pytest.fixture()
def client(server) -> Iterator:  # noqa: ANN001
    """A fresh sync client to the session server."""
    from tritonstack.client import TritonClient

    with TritonClient(server.grpc_url) as c:
        yield c


@pytest.fixture(scope="session")
def digits_data():  # noqa: ANN201
    """(x_test, y_test) of the reference digits split."""
    from tritonstack.convert.reference import digits_split

    _, x_test, _, y_test = digits_split()
    return x_test, y_test
