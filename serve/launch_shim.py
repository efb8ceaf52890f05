"""The LD_PRELOAD launch shim of tritonserver: built once per source hash, staged per start.

    library = shim_library()       # cached .so, or None when no C compiler is installed
    argv = [..., f"--http-restricted-api=...:{ADMIN_HEADER}={PLACEHOLDER}"]
    env = {**env, **shim_environment(staged_copy, key_file, guard_prefix)}

What the shim does (keep the admin key off `/proc/<pid>/cmdline`, refuse system shared-memory
registrations of the server's own IPC files, 0600 IPC files, scrub the stubs' environment) is
described at the top of `shim/launch_shim.c`. Builds go to `build_dir()` (git-ignored), named by
the hash of source and flags, written to a temporary name and renamed, so concurrent starts share
one build.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from pathlib import Path

from tritonstack.errors import ServerStartError

__all__ = ["GUARD_ENV", "KEY_FILE_ENV", "PLACEHOLDER", "build_dir", "shim_environment", "shim_library"]

_LOGGER = logging.getLogger(__name__)
#: Put on the command line instead of the admin key; the shim swaps it before main() runs.
PLACEHOLDER = "@TRITONSTACK_ADMIN_KEY@"
KEY_FILE_ENV = "TRITONSTACK_SHIM_KEY_FILE"
GUARD_ENV = "TRITONSTACK_SHIM_SHM_GUARD"
_SOURCE = Path(__file__).parent / "shim" / "launch_shim.c"
_FLAGS = ("-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror")


def build_dir() -> Path:
    """Where the shim is cached: `$TRITONSTACK_BUILD_DIR`, else `build/native/` of the source checkout
    (git-ignored, as `native_build.py` does), else `~/.cache/tritonstack/native` when not writable."""
    configured = os.environ.get("TRITONSTACK_BUILD_DIR")
    if configured:
        return Path(configured)
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / ".git").exists() and os.access(checkout, os.W_OK):
        return checkout / "build" / "native"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "tritonstack" / "native"


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")


def shim_library() -> Path | None:
    """The built shim (compiled now if its source changed), or None without a C compiler."""
    compiler = _compiler()
    if compiler is None:
        return None
    source = _SOURCE.read_bytes()
    digest = hashlib.sha256(source + " ".join(_FLAGS).encode()).hexdigest()[:16]
    target = build_dir() / f"launch_shim-{digest}.so"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    command = [compiler, *_FLAGS, "-o", str(partial), str(_SOURCE)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        first = (result.stderr.strip().splitlines() or ["no output"])[0]
        raise ServerStartError(f"building the launch shim with {compiler} failed: {first}")
    os.replace(partial, target)
    _LOGGER.info("built %s", target)
    return target


def shim_environment(library: Path, key_file: Path | None, guard_prefix: str) -> dict[str, str]:
    """Variables that load the shim into tritonserver; the shim removes them before any stub starts."""
    env = {"LD_PRELOAD": str(library), GUARD_ENV: guard_prefix}
    if key_file is not None:
        env[KEY_FILE_ENV] = str(key_file)
    return env
