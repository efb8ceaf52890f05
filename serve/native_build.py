"""Build the native onnxruntime backend (C++ sources in `serve/native/`) once per source hash.

    from tritonstack.serve.native_build import native_backend
    library = native_backend()                 # build/native/<hash>/libtriton_onnxruntime.so
    asan = native_backend(sanitize=True)       # the AddressSanitizer build, for the CI run

    python -m tritonstack.serve.native_build [--asan]     # what `make setup` / `make native` run

The output lives in `build/native/<hash>/` of the source checkout (git-ignored), or under
`~/.cache/tritonstack/native/` when the package directory is not writable. A build happens only when
no library exists for the current sources and flags; concurrent callers wait on one file lock. With
no C++ compiler, NativeBuildError says how to install one.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tritonstack.errors import NativeBuildError

__all__ = ["LIBRARY_NAME", "SOURCES", "build_directory", "native_backend", "source_hash"]

_LOGGER = logging.getLogger(__name__)

SOURCES = Path(__file__).resolve().parent / "native"
LIBRARY_NAME = "libtriton_onnxruntime.so"
_FLAGS = ("-std=c++17", "-Wall", "-Wextra", "-Werror", "-fPIC", "-fvisibility=hidden")
_RELEASE = ("-O2",)
_ASAN = ("-O1", "-g", "-fsanitize=address", "-fno-omit-frame-pointer")
_COMPILER_HINT = "install Debian's g++ (`sudo apt-get install g++`, or `make sysdeps`)"


def _flags(sanitize: bool) -> tuple[str, ...]:
    return _FLAGS + (_ASAN if sanitize else _RELEASE)


def source_hash(sanitize: bool = False) -> str:
    """A short hash of every source file and the compiler flags: the build's cache key."""
    digest = hashlib.sha256(" ".join(_flags(sanitize)).encode())
    for path in sorted(SOURCES.glob("*.[ch]*")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16] + ("-asan" if sanitize else "")


def _build_root() -> Path:
    checkout = SOURCES.parents[1] / "build" / "native"
    try:
        checkout.mkdir(parents=True, exist_ok=True)
        if os.access(checkout, os.W_OK):
            return checkout
    except OSError:
        pass
    return Path.home() / ".cache" / "tritonstack" / "native"


def build_directory(sanitize: bool = False) -> Path:
    """Where the library for the current sources lives (built or not)."""
    return _build_root() / source_hash(sanitize)


def native_backend(*, sanitize: bool = False) -> Path:
    """Path of the built backend library for the current sources; build it first if it is missing."""
    target = build_directory(sanitize) / LIBRARY_NAME
    if target.is_file():
        return target
    if not any(SOURCES.glob("*.cc")):  # an install without its package data: nothing to build
        raise NativeBuildError(f"the native backend's C++ sources are missing from {SOURCES}; reinstall "
                               "tritonstack from a release that ships serve/native, or use --runner python")
    target.parent.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent.parent / ".lock", "w") as lock:  # one builder at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.is_file():
            _build(target, sanitize)
    return target


def _compiler() -> str:
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not compiler or not shutil.which(compiler):
        raise NativeBuildError(f"no C++ compiler to build the native onnxruntime backend; {_COMPILER_HINT}")
    return compiler


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603 - our compiler
    if result.returncode != 0:
        first = next((line for line in result.stderr.splitlines() if "error" in line), result.stderr.strip())
        raise NativeBuildError(f"building the native onnxruntime backend failed: {first[:300]}")


def _build(target: Path, sanitize: bool) -> None:
    """Compile every source in parallel (2 jobs), link, and move the result into place atomically."""
    compiler, flags = _compiler(), list(_flags(sanitize))
    sources = sorted(SOURCES.glob("*.cc"))
    _LOGGER.info("building %s from %d sources into %s", LIBRARY_NAME, len(sources), target.parent)
    with tempfile.TemporaryDirectory(dir=target.parent.parent) as scratch:
        objects = [Path(scratch) / f"{source.stem}.o" for source in sources]
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda pair: _run([compiler, *flags, "-c", str(pair[0]), "-o", str(pair[1])]),
                          zip(sources, objects, strict=True)))
        library = Path(scratch) / LIBRARY_NAME
        _run([compiler, *flags, "-shared", "-o", str(library), *map(str, objects), "-ldl"])
        staged = Path(scratch) / "out"
        staged.mkdir()
        shutil.rmtree(target.parent, ignore_errors=True)  # a leftover without the library
        library.rename(staged / LIBRARY_NAME)
        staged.rename(target.parent)


def main(argv: list[str] | None = None) -> int:
    """Build (or find) the backend and print its path; one line on stderr and exit 1 on failure."""
    args = sys.argv[1:] if argv is None else argv
    try:
        path = native_backend(sanitize="--asan" in args)
    except NativeBuildError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    sys.stdout.write(f"{path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
