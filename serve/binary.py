"""Locate the tritonserver binary shipped in the nvidia-pytriton wheel and make it runnable.

    install = find_install()
    backends = install.prepare_backends(workdir)
    env = install.environment()

What the binary needs (measured, see the README): a backend directory with the Python backend plus
the stub built for the running Python, and, because this build has no onnxruntime backend, a Python-
based backend named `onnxruntime` (`backends/onnxruntime/model.py` = `runners/onnx_model.py`) so
that standard `platform: "onnxruntime_onnx"` models are served unchanged; `LD_LIBRARY_PATH` holding
the wheel's bundled libraries and the directory of `libpython3.X.so`, and the venv's `bin/` first on
`PATH` so that the stub imports the venv's numpy and onnxruntime.
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

__all__ = ["TritonInstall", "find_install"]

_PYTHON_FILES = ("libtriton_python.so", "triton_python_backend_utils.py")
_ONNX_RUNNER = Path(__file__).parent / "runners" / "onnx_model.py"


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

    def prepare_backends(self, workdir: Path) -> Path:
        """Create `workdir/backends`: the Python backend with this Python's stub, and the
        ONNX Runtime runner as the Python-based backend `onnxruntime`."""
        python_dir = workdir / "backends" / "python"
        python_dir.mkdir(parents=True, exist_ok=True)
        for name in _PYTHON_FILES:
            shutil.copy2(self.root / "backends" / "python" / name, python_dir / name)
        shutil.copy2(self.stub, python_dir / self.stub.name)
        onnx_dir = workdir / "backends" / "onnxruntime"
        onnx_dir.mkdir(exist_ok=True)
        shutil.copy2(_ONNX_RUNNER, onnx_dir / "model.py")
        return workdir / "backends"

    def environment(self, *, ort_threads: int | None = None) -> dict[str, str]:
        """Return the environment the server process (and its stubs) must run with."""
        env = dict(os.environ)
        if ort_threads:
            env["TRITONSTACK_ORT_THREADS"] = str(ort_threads)
        venv_bin = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", "/usr/bin:/bin")])
        libpython_dir = sysconfig.get_config_var("LIBDIR") or ""
        paths = [str(self.libs), libpython_dir, env.get("LD_LIBRARY_PATH", "")]
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in paths if p)
        env.pop("PYTHONHOME", None)
        return env


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
