"""The README's Python snippets run as written against a real server, on a repository built the way the
README says (`tritonstack models build`, whose progress lines stream when its output is a pipe).

The snippets start their own embedded server (free loopback ports) from `model_repository` in their
working folder, exactly as a user who copied them would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.unit.test_readme_snippets import snippets

pytestmark = pytest.mark.integration

_BIN = Path(sys.executable).parent
_ENV = {**os.environ, "PATH": f"{_BIN}:{os.environ['PATH']}", "COLUMNS": "200"}
_DUMP = """
import runpy, sys
import numpy as np
found = runpy.run_path("snippet.py")
arrays = {k: v for k, v in found.items() if isinstance(v, np.ndarray)}
arrays.update({f"{k}.{n}": a for k, v in found.items() if isinstance(v, dict)
               for n, a in v.items() if isinstance(a, np.ndarray)})
np.savez(sys.argv[1], **arrays)
"""


@pytest.fixture(scope="module")
def built() -> Iterator[dict]:
    """`tritonstack models build` of two models into <tmp>/model_repository, stdout a pipe; every
    line with the time it arrived. The folder is world-readable, like a user's project folder: started
    as root, the server runs as an unprivileged user (pytest's own tmp folders are mode 0700)."""
    root = Path(tempfile.mkdtemp(prefix="tritonstack-readme-"))
    root.chmod(0o755)
    try:
        yield _build(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _build(root: Path) -> dict:
    argv = [str(_BIN / "tritonstack"), "models", "build", "--only", "digits_mlp", "--only", "wine_forest",
            "--repository", str(root / "model_repository"), "--workdir", str(root / "build")]
    started, lines = time.monotonic(), []
    with (root / "build.log").open("w") as log, subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=log, text=True, env=_ENV) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append((time.monotonic() - started, line.rstrip()))
        returncode = process.wait(timeout=600)
    assert returncode == 0, (root / "build.log").read_text()[-3000:]
    return {"root": root, "lines": lines, "total_s": time.monotonic() - started}


def test_models_build_prints_progress_lines_as_it_goes_when_not_a_terminal(built: dict) -> None:
    progress = [(t, line) for t, line in built["lines"] if line.startswith("[")]
    texts = [line.split("] ", 1)[1] for _, line in progress]
    assert texts[0] == "digits_mlp: building (1/2)" and texts[2] == "wine_forest: building (2/2)", texts
    assert texts[1].startswith("digits_mlp: built in ") and "digits_mlp v1" in texts[1]
    assert texts[3].startswith("wine_forest: built in ") and "wine_forest v1" in texts[3]
    elapsed = [float(line[1:].split(" s]")[0]) for _, line in progress]
    assert elapsed == sorted(elapsed)
    first_s, total_s = progress[0][0], built["total_s"]
    # streamed, not all at exit: the first line reaches the pipe long before the build ends
    assert first_s < 0.5 * total_s, (first_s, total_s)
    print(f"models build through a pipe: {len(progress)} progress lines, the first after {first_s:.1f} s "
          f"of {total_s:.1f} s; {texts}")


@pytest.mark.parametrize(("where", "code"), snippets("python"))
def test_readme_python_snippet_runs_as_written(built: dict, where: str, code: str, tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    (built["root"] / "snippet.py").write_text(code)
    out = tmp_path / "globals.npz"
    done = subprocess.run([sys.executable, "-c", _DUMP, str(out)], cwd=built["root"], capture_output=True,
                          text=True, timeout=300, env=_ENV)
    assert done.returncode == 0, f"{where} failed:\n{done.stderr[-3000:]}"
    found = dict(np.load(out))
    if "probabilities" in found:  # the README's serving example
        labels = load_digits().target
        accuracy = float((found["everything.probabilities"].argmax(1) == labels).mean())
        assert found["probabilities"].shape == (8, 10) and found["everything.probabilities"].shape == (1797, 10)
        assert (found["probabilities"].argmax(1) == labels[:8]).all() and accuracy > 0.95
        print(f"{where}: ran as written; stdout {done.stdout.strip()!r}; predict_many top-1 {accuracy:.3f} "
              f"over {len(labels)} images")
