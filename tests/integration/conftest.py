import hashlib
import shutil
from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under root, by relative path (to prove a command left it as it was)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in Path(root).rglob("*") if p.is_file()}


@pytest.fixture()
def repo_copy(repository: Path, tmp_path: Path) -> Path:
    """A private copy of the session repository, readable by the server's own user."""
    copy = tmp_path / "repo"
    shutil.copytree(repository, copy)
    copy.chmod(0o755)
    return copy
