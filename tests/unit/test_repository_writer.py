from pathlib import Path

import pytest
from tritonstack.convert import write_version
from tritonstack.convert.reference.digits import DIGITS_SPEC

from tritonstack.errors import RepositoryWriteError
from tritonstack.model_config import config_text

ASSETS = Path(__file__).parent.parent / "assets"


def _artifact(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"onnx")
    return path


def test_config_matches_golden_file() -> None:
    assert config_text(DIGITS_SPEC.to_config()) == (ASSETS / "digits_mlp.config.pbtxt").read_text()


def test_new_version_is_a_new_folder_never_an_overwrite(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    files = {"model.onnx": _artifact(tmp_path)}
    assert write_version(repo, DIGITS_SPEC, files=files, manifest={}) == 1
    assert write_version(repo, DIGITS_SPEC, files=files, manifest={}) == 2
    with pytest.raises(RepositoryWriteError, match="exists already"):
        write_version(repo, DIGITS_SPEC, files=files, manifest={}, version=1)
    assert sorted(p.name for p in (repo / "digits_mlp").iterdir()) == ["1", "2", "config.pbtxt"]
    assert '"version": 2' in (repo / "digits_mlp" / "2" / "manifest.json").read_text()


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", "", ".hidden"])
def test_path_traversal_in_model_names_is_refused(name: str) -> None:
    from dataclasses import replace

    with pytest.raises(RepositoryWriteError, match="not allowed"):
        replace(DIGITS_SPEC, name=name)


def test_failed_write_leaves_repository_unchanged(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_version(repo, DIGITS_SPEC, files={"model.onnx": _artifact(tmp_path)}, manifest={})
    before = sorted(str(p.relative_to(repo)) for p in repo.rglob("*"))
    with pytest.raises(RepositoryWriteError, match="repository is unchanged"):
        write_version(repo, DIGITS_SPEC, files={"model.onnx": tmp_path / "missing.onnx"}, manifest={})
    assert sorted(str(p.relative_to(repo)) for p in repo.rglob("*")) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".digits_mlp")]
