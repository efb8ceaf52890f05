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
