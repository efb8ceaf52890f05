"""SIGTERM to a CLI command without its own handling: the `with` blocks clean up (KeyboardInterrupt in
the main thread), one line 'terminated', exit 143 -- not an instant death that orphans children."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

_SCRIPT = textwrap.dedent('''
    import sys, time
    import typer
    from tritonstack import cli

    @cli.app.command("sleep-for-test")
    def sleep_for_test() -> None:
        try:
            print("ready", flush=True)
            time.sleep(60)
        finally:
            open(sys.argv[1], "w").write("cleaned up")

    cli.main(["sleep-for-test"])
''')


def test_sigterm_runs_cleanup_and_exits_143_with_one_line(tmp_path: Path) -> None:
    marker = tmp_path / "cleanup"
    process = subprocess.Popen([sys.executable, "-c", _SCRIPT, str(marker)], stdout=subprocess.PIPE,  # noqa: S603
                               stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        os.kill(process.pid, signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, (process.returncode, err)
    assert marker.read_text() == "cleaned up"
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "terminated", err
