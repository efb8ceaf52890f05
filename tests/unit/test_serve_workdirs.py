"""Work folders of `serve`: a SIGKILLed serve's folder is removed at the next start, nothing else is
(outside tester's find: /tmp/tritonstack-serve-XXXX piled up after SIGKILL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tritonstack.serve.workdirs import OWNER_FILE, PREFIX, make_workdir, remove_stale_workdirs

_MAKE_AND_HANG = ("import sys, time; from pathlib import Path; from tritonstack.serve.workdirs import make_workdir; "
                  "print(make_workdir(Path(sys.argv[1])), flush=True); time.sleep(120)")


def _owned(root: Path, name: str, record: dict | None) -> Path:
    folder = root / f"{PREFIX}{name}"
    folder.mkdir()
    (folder / "tritonserver.log").write_text("log\n")
    if record is not None:
        (folder / OWNER_FILE).write_text(json.dumps(record))
    return folder


def test_the_folder_of_a_sigkilled_serve_is_removed_at_the_next_start(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", _MAKE_AND_HANG, str(tmp_path)], stdout=subprocess.PIPE,
                             text=True)
    try:
        orphan = Path(child.stdout.readline().strip())
        assert (orphan / OWNER_FILE).is_file()
        assert remove_stale_workdirs(tmp_path) == []  # its owner is alive: kept
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
    assert orphan.is_dir()
    mine = make_workdir(tmp_path)
    left = sorted(p.name for p in tmp_path.iterdir())
    print(f"after SIGKILL and a new start: {left}")
    assert not orphan.exists() and left == [mine.name]


def test_folders_of_live_owners_without_a_record_or_of_others_are_kept(tmp_path: Path) -> None:
    me = json.loads((make_workdir(tmp_path) / OWNER_FILE).read_text())
    reused = _owned(tmp_path, "reused", {**me, "start_time": me["start_time"] - 1})  # same pid, other process
    no_record = _owned(tmp_path, "norecord", None)
    garbled = _owned(tmp_path, "garbled", None)
    (garbled / OWNER_FILE).write_text("{not json")
    link = _owned(tmp_path, "link", None)
    (link / OWNER_FILE).symlink_to(reused / OWNER_FILE)
    removed = remove_stale_workdirs(tmp_path)
    assert removed == [reused]
    assert no_record.is_dir() and garbled.is_dir() and link.is_dir() and len(list(tmp_path.iterdir())) == 4


@pytest.mark.skipif(os.geteuid() != 0, reason="making a file of another uid needs root")
def test_a_record_written_by_another_user_is_never_acted_on(tmp_path: Path) -> None:
    other = _owned(tmp_path, "other", {"pid": 2**22 + 1, "start_time": 1, "uid": 4242})
    os.chown(other / OWNER_FILE, 4242, 4242)
    assert remove_stale_workdirs(tmp_path) == [] and other.is_dir()
