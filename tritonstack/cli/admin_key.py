"""The admin key as the CLI takes it: `TRITONSTACK_ADMIN_KEY`, `--admin-key @FILE`, or (visible to every
local user in `ps`, so warned about) `--admin-key VALUE`.

    key = admin_key(value_from_option)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tritonstack.errors import ConfigError

__all__ = ["HELP", "admin_key"]

ENV = "TRITONSTACK_ADMIN_KEY"
HELP = ("Admin key of the restricted endpoints. Prefer the TRITONSTACK_ADMIN_KEY variable or @FILE "
        "(a file holding the key): a value on the command line is visible to every local user in `ps`.")


def admin_key(value: str | None) -> str | None:
    """The key: read from the file for `@FILE` (warned about if others can read the file); a literal
    value typed on the command line gets a warning on stderr."""
    if value is None:
        return None
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            key = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the admin key file {path} ({exc.strerror}); "
                              "pass --admin-key @FILE with a readable file") from exc
        if not key:
            raise ConfigError(f"the admin key file {path} is empty; write the key into it")
        if path.stat().st_mode & 0o044:
            _warn(f"warning: the admin key file {path} is readable by other users "
                  f"(mode {path.stat().st_mode & 0o777:04o}); run `chmod 600 {path}`")
        return key
    if _on_command_line(value):
        _warn(f"warning: --admin-key on the command line is visible to every local user in `ps`; "
              f"use {ENV}=... or --admin-key @FILE")
    return value


def _on_command_line(value: str) -> bool:
    """Whether the value is in this process's command line (what `ps` shows), or, passed in by a
    caller, is not the environment's."""
    typed = any(arg == value or arg.endswith(f"={value}") for arg in sys.argv[1:])
    return typed or value != os.environ.get(ENV)


def _warn(line: str) -> None:
    from tritonstack.cli import err_console

    err_console.print(line, soft_wrap=True)
