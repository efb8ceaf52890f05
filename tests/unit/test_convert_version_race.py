"""`versions add` racing `convert` into one model: each gets its own version, none is lost (outside test 13c)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from tritonstack.convert import atomic_publish
from tritonstack.convert.pipeline import ConvertOptions, convert_model
from tritonstack.ops.versions import VersionManager

from .convert_models import mlp_onnx


@pytest.fixture(autouse=True)
def _no_hook() -> None:
    yield
    atomic_publish.set_step_hook(None)


def test_versions_add_during_a_convert_publish_waits_and_takes_the_next_number(tmp_path: Path) -> None:
    model, repo = mlp_onnx(tmp_path / "m.onnx"), tmp_path / "repo"
    options = ConvertOptions(model=model, name="m", repository=repo, workdir=tmp_path / "work", progress=False)
    convert_model(options)
    added: list[object] = []

    def add() -> None:
        try:
            added.append(VersionManager(repo, None, lock_timeout_s=120).add("m", model))  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            added.append(exc)

    racer = threading.Thread(target=add)

    def hook(name: str) -> None:
        if name == "rename version in" and not racer.is_alive() and not added:
            racer.start()  # versions add picks its number while convert is about to move version 2 in
            racer.join(timeout=2.0)

    atomic_publish.set_step_hook(hook)
    converted = convert_model(options).variants[0].version
    racer.join(timeout=120)
    versions = sorted(int(p.name) for p in (repo / "m").iterdir() if p.name.isdigit())
    print(f"\nconvert wrote version {converted}, versions add wrote {added}; on disk {versions}")
    assert (converted, added, versions) == (2, [3], [1, 2, 3])
