"""The `tritonstack` command's entry point: a Ctrl-C while the CLI is still being imported (its
first ~0.2 s) is the same one line and exit code as later, not a KeyboardInterrupt traceback."""

from __future__ import annotations

import sys


def main() -> None:
    """Import the CLI, then run it."""
    try:
        from tritonstack.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    run()
