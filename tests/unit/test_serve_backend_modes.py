"""Issue 13 D4: the backends copy `serve` makes is readable by the server's user whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from tritonstack.serve.binary import find_install


@pytest.mark.parametrize("mask", [0o027, 0o077])
def test_d4_backends_copy_modes_do_not_follow_the_umask(tmp_path: Path, mask: int) -> None:
    install = find_install()
    previous = os.umask(mask)
    try:
        backends = install.prepare_backends(tmp_path, runner="python")
    finally:
        os.umask(previous)
    modes = {p.relative_to(tmp_path).as_posix(): stat.S_IMODE(p.stat().st_mode)
             for p in [backends, *backends.rglob("*")]}
    folders = {name: mode for name, mode in modes.items() if (tmp_path / name).is_dir()}
    assert set(folders.values()) == {0o755}, folders
    assert modes[f"backends/python/{install.stub.name}"] == 0o755
    assert {m for n, m in modes.items() if n not in folders and not n.endswith("_stub")} == {0o644}, modes
    print(f"\nD4: umask {mask:04o}: {len(folders)} folders 0755, {len(modes) - len(folders)} files 0644/0755")
