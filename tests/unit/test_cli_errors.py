import subprocess
import sys
from pathlib import Path


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tritonstack", *args], capture_output=True, text=True)


def test_missing_repository_is_one_line_no_traceback(tmp_path: Path) -> None:
    done = _run("serve", "--repository", str(tmp_path / "nope"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "does not exist" in lines[0] and "models build" in lines[0]



def test_d10b_repository_that_is_a_file_is_said_to_be_a_file(tmp_path: Path) -> None:
    """Issue 13 D10b: `serve --repository model.joblib` (an existing file) said "does not exist"."""
    model = tmp_path / "some_file.joblib"
    model.write_bytes(b"not a repository")
    done = _run("serve", "--repository", str(model))
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and "Traceback" not in done.stderr + done.stdout, done.stderr
    assert len(lines) == 1 and "is a file, not a model repository folder" in lines[0], lines
    assert "does not exist" not in lines[0] and "tritonstack convert" in lines[0], lines
    print(f"\nD10b: {lines[0]}")

def test_bad_host_is_refused(tmp_path: Path) -> None:
    done = _run("serve", "--repository", str(tmp_path), "--host", "localhost:80")
    assert done.returncode == 2 and "is not an IP address" in done.stderr


def test_unknown_reference_model(tmp_path: Path) -> None:
    done = _run("models", "build", "--repository", str(tmp_path / "r"), "--only", "nope")
    assert done.returncode == 2 and "unknown reference model" in done.stderr
    assert not (tmp_path / "r").exists()


def test_a_half_built_tritonclient_prints_no_traceback_from_its_destructor():
    """CI 2026-12-03: a Ctrl-C inside InferenceServerClient.__init__ (an embedded server starting)
    left a client whose __del__ printed 'Exception ignored ... no attribute _stream' after 'interrupted'."""
    import subprocess
    import sys

    script = ("import sys; from tritonstack.entry import _quiet_half_built_clients as q; sys.unraisablehook = q\n"
              "import tritonclient.grpc as g\nx = g.InferenceServerClient.__new__(g.InferenceServerClient)\n"
              "del x\nclass C:\n    def __del__(self):\n        raise ValueError('other')\ny = C()\ndel y\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "_stream" not in done.stderr, done.stderr
    assert "ValueError: other" in done.stderr  # any other unraisable still shows
