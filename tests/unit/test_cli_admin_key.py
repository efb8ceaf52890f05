"""The admin key on the CLI: @FILE and the environment keep it out of `ps`; a literal value is warned
about (outside tester's find: `serve --admin-key K` showed K to every local user, silently)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tritonstack.cli.admin_key import admin_key
from tritonstack.errors import ConfigError


def test_file_value_is_read_and_not_warned(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("s3cr3t\n")
    key_file.chmod(0o600)
    assert admin_key(f"@{key_file}") == "s3cr3t"
    assert "warning" not in capsys.readouterr().err


def test_literal_value_is_warned_about(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("TRITONSTACK_ADMIN_KEY", raising=False)
    assert admin_key("s3cr3t") == "s3cr3t"
    err = capsys.readouterr().err
    assert "visible to every local user" in err and "s3cr3t" not in err


def test_value_from_the_environment_is_not_warned(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("TRITONSTACK_ADMIN_KEY", "s3cr3t")
    assert admin_key("s3cr3t") == "s3cr3t"
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("content", [None, ""])
def test_missing_or_empty_file_is_one_line(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "key"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        admin_key(f"@{path}")
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_a_key_file_others_can_read_is_warned_about(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("s3cr3t\n")
    key_file.chmod(0o644)
    assert admin_key(f"@{key_file}") == "s3cr3t"
    err = capsys.readouterr().err
    print(err.strip())
    assert len(err.strip().splitlines()) == 1 and "readable by other users" in err and "chmod 600" in err
    assert "s3cr3t" not in err


def test_a_literal_key_on_the_command_line_is_warned_about_even_with_the_variable_set(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "TRITONSTACK_ADMIN_KEY": "s3cr3t"}
    command = [sys.executable, "-m", "tritonstack", "versions", "list", "digits_mlp", "--repository", str(tmp_path)]
    typed = subprocess.run([*command, "--admin-key", "s3cr3t"], capture_output=True, text=True, timeout=60, env=env)
    print(typed.stderr.strip())
    assert "visible to every local user" in typed.stderr and "s3cr3t" not in typed.stderr
    from_env = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    assert "visible to every local user" not in from_env.stderr
