"""Work folders of `serve` (`/tmp/tritonstack-serve-XXXX`): made with an owner record, and the ones a
dead `serve` left behind removed at the next start (a SIGKILLed serve's reaper, reaper.py, removes
its folder within seconds; this sweep is the fallback when the reaper was killed too).

    workdir = make_workdir()        # removes stale ones of this user first, then makes a new one

A folder is stale only if it holds OWNER_FILE, written by this user (uid of the file), naming a
process that is gone or that has another start time (the pid was reused). A folder without the file,
or with one written by another user, is never touched.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path

from tritonstack.serve.reaper import process_start_time as _start_time

__all__ = ["OWNER_FILE", "PREFIX", "make_workdir", "remove_stale_workdirs"]

_LOGGER = logging.getLogger(__name__)
PREFIX = "tritonstack-serve-"
OWNER_FILE = "tritonstack-owner.json"


def make_workdir(root: Path | None = None) -> Path:
    """A new private work folder under `root` (the temp dir) recording this process as its owner;
    stale ones of this user are removed first."""
    remove_stale_workdirs(root)
    workdir = Path(tempfile.mkdtemp(prefix=PREFIX, dir=root))
    record = {"pid": os.getpid(), "start_time": _start_time(os.getpid()), "uid": os.getuid()}
    tmp = workdir / f".{OWNER_FILE}.tmp"
    tmp.write_text(json.dumps(record) + "\n")
    os.replace(tmp, workdir / OWNER_FILE)  # never seen half-written
    return workdir


def _is_stale(workdir: Path) -> bool:
    """True only for a real folder whose owner record, written by this user, names a dead process."""
    try:
        if not stat.S_ISDIR(os.lstat(workdir).st_mode):
            return False
        owner = workdir / OWNER_FILE
        info = os.lstat(owner)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            return False
        record = json.loads(owner.read_text())
        pid, started = int(record["pid"]), record["start_time"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    now = _start_time(pid)
    return now is None or (started is not None and now != started)  # gone, or its pid reused


def remove_stale_workdirs(root: Path | None = None) -> list[Path]:
    """Remove the work folders under `root` (the temp dir) whose owning `serve` is gone; return them."""
    base = Path(root or tempfile.gettempdir())
    removed = []
    for workdir in sorted(base.glob(f"{PREFIX}*")):
        if _is_stale(workdir):
            shutil.rmtree(workdir, ignore_errors=True)
            removed.append(workdir)
            _LOGGER.info("removed %s, left behind by a serve process that is gone", workdir)
    return removed
