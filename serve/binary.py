"""Locate the tritonserver binary shipped in the nvidia-pytriton wheel and make it runnable.

    install = find_install()
    backends = install.prepare_backends(workdir)
    env = install.environment()

What the binary needs (measured, see the README): a backend directory with the Python backend plus
the stub built for the running Python, and, because this build has no onnxruntime backend, one of ours
named `onnxruntime` so that standard `platform: "onnxruntime_onnx"` models are served unchanged:

- runner "native" (default): `backends/onnxruntime/libtriton_onnxruntime.so`, our C++ backend
  (`serve/native/`, built by `native_build.py`), which `dlopen`s the onnxruntime wheel's C library
  passed as `--backend-config=onnxruntime,ort-library=<path>`; plus the Python runner as the
  Python-based backend `onnxruntime_python`, for the models that ask for it (see `plan.py`);
- runner "python": the Python runner as the Python-based backend `onnxruntime`
  (`backends/onnxruntime/model.py` = `runners/onnx_model.py`).

`LD_LIBRARY_PATH` holds the wheel's bundled libraries and the directory of `libpython3.X.so`, and the
venv's `bin/` comes first on `PATH` so that the stub imports the venv's numpy and onnxruntime.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from tritonstack.errors import ServerBinaryNotFoundError

__all__ = ["MMAP_THRESHOLD_BYTES", "PYTHON_RUNNER_BACKEND", "RUNNERS", "TritonInstall", "find_install",
           "ort_library"]

_PYTHON_FILES = ("libtriton_python.so", "triton_python_backend_utils.py")
_ONNX_RUNNER = Path(__file__).parent / "runners" / "onnx_model.py"
#: How ONNX models can run: our C++ backend, or the Python-backend runner.
RUNNERS = ("native", "python")
#: Name of the Python-based backend that serves the models asking for the Python runner (native default).
PYTHON_RUNNER_BACKEND = "onnxruntime_python"


def ort_library() -> Path:
    """The ONNX Runtime C library inside the installed onnxruntime wheel (for the native backend)."""
    spec = importlib.util.find_spec("onnxruntime")
    found = []
    if spec is not None and spec.submodule_search_locations:
        capi = Path(next(iter(spec.submodule_search_locations))) / "capi"
        found = sorted(capi.glob("libonnxruntime.so*"))
    if not found:
        raise ServerBinaryNotFoundError(
            "the native onnxruntime backend needs the onnxruntime wheel's libonnxruntime.so; "
            "install it with: pip install 'tritonstack[serve]' (or use --runner python)"
        )
    return found[-1]


#: Allocations from this size up are mmapped and returned on free (glibc `MALLOC_MMAP_THRESHOLD_`, set
#: for the server process and its stubs unless the caller's environment sets it).
MMAP_THRESHOLD_BYTES = 128 * 1024


@dataclass(frozen=True, kw_only=True)
class TritonInstall:
    """Paths inside an installed nvidia-pytriton wheel."""

    root: Path  # .../site-packages/pytriton/tritonserver
    libs: Path  # .../site-packages/nvidia_pytriton.libs

    @property
    def binary(self) -> Path:
        """The tritonserver executable."""
        return self.root / "bin" / "tritonserver"

    @property
    def stub(self) -> Path:
        """The Python-backend stub built for the running interpreter."""
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        return self.root / "python_backend_stubs" / version / "triton_python_backend_stub"

    def prepare_backends(self, workdir: Path, *, runner: str = "native") -> Path:
        """Create `workdir/backends`: the Python backend with this Python's stub, and the backend
        `onnxruntime` of the chosen runner (native: plus the Python runner as `onnxruntime_python`).

        Modes are set explicitly (folders and programs 0755, files 0644), not left to the caller's umask:
        started by root, the server runs as the service user, who must read them (issue 13 D4). They are
        no secret, and the work dir around them stays private (0700, owned by the server's user)."""
        python_dir = _public_dir(workdir / "backends" / "python")
        for name in _PYTHON_FILES:
            _public_copy(self.root / "backends" / "python" / name, python_dir / name)
        _public_copy(self.stub, python_dir / self.stub.name, mode=0o755)
        onnx_dir = _public_dir(workdir / "backends" / "onnxruntime")
        if runner == "python":
            _public_copy(_ONNX_RUNNER, onnx_dir / "model.py")
            return workdir / "backends"
        from tritonstack.serve.native_build import LIBRARY_NAME, native_backend

        _public_copy(native_backend(), onnx_dir / LIBRARY_NAME, mode=0o755)
        python_runner_dir = _public_dir(workdir / "backends" / PYTHON_RUNNER_BACKEND)
        _public_copy(_ONNX_RUNNER, python_runner_dir / "model.py")
        return workdir / "backends"

    def backend_arguments(self, *, runner: str = "native", ort_threads: int | None = None,
                          drift_gauges: bool = True) -> list[str]:
        """tritonserver arguments for the native backend: where ONNX Runtime is, the thread override, and
        drift_gauges=False to leave out the tritonstack_drift_* gauges of models with a drift reference."""
        if runner == "python":
            return []
        args = [f"--backend-config=onnxruntime,ort-library={ort_library()}"]
        if ort_threads:
            args.append(f"--backend-config=onnxruntime,ort-threads={ort_threads}")
        if not drift_gauges:
            args.append("--backend-config=onnxruntime,drift-gauges=0")
        return args

    def environment(self, *, ort_threads: int | None = None) -> dict[str, str]:
        """Return the environment the server process (and its stubs) must run with: the caller's,
        less the admin key and anything named like a secret (see `is_secret_variable`)."""
        from tritonstack.serve.sandbox import is_secret_variable

        env = {name: value for name, value in os.environ.items() if not is_secret_variable(name)}
        if ort_threads:
            env["TRITONSTACK_ORT_THREADS"] = str(ort_threads)
        # glibc raises its mmap threshold after the first large free, so the buffers of model loading
        # (ONNX protos, ORT's graph copies) stay in the heap for good; a fixed threshold hands them back
        # (tritonserver with the reference models on the native backend: ~395 -> ~287 MiB after warm-up)
        env.setdefault("MALLOC_MMAP_THRESHOLD_", str(MMAP_THRESHOLD_BYTES))
        venv_bin = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", "/usr/bin:/bin")])
        libpython_dir = sysconfig.get_config_var("LIBDIR") or ""
        paths = [str(self.libs), libpython_dir, env.get("LD_LIBRARY_PATH", "")]
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in paths if p)
        env.pop("PYTHONHOME", None)
        return env


def _public_dir(path: Path) -> Path:
    """`path` (and its missing parents) made, each mode 0755 whatever the umask; return it."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for folder in missing:
        os.chmod(folder, 0o755)
    return path


def _public_copy(source: Path, target: Path, *, mode: int = 0o644) -> None:
    """Copy `source` to `target` with `mode`, whatever the umask and the source's own mode."""
    shutil.copyfile(source, target)
    os.chmod(target, mode)


def find_install() -> TritonInstall:
    """Find the tritonserver shipped by nvidia-pytriton, or say how to install it."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise ServerBinaryNotFoundError(
            "the embedded Triton server needs the nvidia-pytriton wheel; "
            "install it with: pip install 'tritonstack[serve]' (or run `make setup`)"
        )
    package = Path(next(iter(spec.submodule_search_locations)))
    install = TritonInstall(root=package / "tritonserver", libs=package.parent / "nvidia_pytriton.libs")
    for needed in (install.binary, install.stub):
        if not needed.exists():
            raise ServerBinaryNotFoundError(
                f"{needed} is missing from the nvidia-pytriton install "
                f"(Python {sys.version_info.major}.{sys.version_info.minor}); reinstall nvidia-pytriton"
            )
    return install
