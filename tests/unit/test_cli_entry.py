"""A Ctrl-C while the CLI is still being imported: one line, exit 130, no traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

_CTRL_C_DURING_IMPORT = textwrap.dedent('''
    import builtins
    real_import = builtins.__import__

    def ctrl_c_on_cli(name, *args, **kwargs):
        if name == "tritonstack.cli":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    builtins.__import__ = ctrl_c_on_cli
    from tritonstack.entry import main
    main()
''')


def test_ctrl_c_while_the_cli_is_imported_is_one_line_and_130() -> None:
    done = subprocess.run([sys.executable, "-c", _CTRL_C_DURING_IMPORT], capture_output=True, text=True,  # noqa: S603
                          timeout=60, cwd=Path(__file__).parents[2])
    assert done.returncode == 130 and done.stderr == "interrupted\n", (done.returncode, done.stderr)


def test_the_console_script_runs_the_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "tritonstack", "--help"], capture_output=True, text=True,  # noqa: S603
                          timeout=60, cwd=Path(__file__).parents[2])
    assert done.returncode == 0 and "Usage: " in done.stdout
