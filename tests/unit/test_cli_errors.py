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


def test_bad_host_is_refused(tmp_path: Path) -> None:
    done = _run("serve", "--repository", str(tmp_path), "--host", "localhost:80")
    assert done.returncode == 2 and "is not an IP address" in done.stderr


def test_unknown_reference_model(tmp_path: Path) -> None:
    done = _run("models", "build", "--repository", str(tmp_path / "r"), "--only", "nope")
    assert done.returncode == 2 and "unknown reference model" in done.stderr
    assert not (tmp_path / "r").exists()
