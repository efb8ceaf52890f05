"""Every Python package folder of the source tree is declared in pyproject.toml (wheels need it)."""

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_declared() -> None:
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = set(tool["packages"])
    found = set()
    for package, folder in tool["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package, *relative)))
    assert found - declared == set(), "add these to [tool.setuptools] packages"


def test_files_the_server_builds_or_runs_are_package_data() -> None:
    """A non-editable install must carry the native backend's sources (built at first serve), the Python
    runner and the launch shim: each such file of serve/ matches a package-data pattern."""
    from fnmatch import fnmatch

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    serve = ROOT / "serve"
    needed = [*serve.glob("native/*.cc"), *serve.glob("native/*.h"), *serve.glob("runners/*.py"),
              *serve.glob("shim/*.c")]
    assert any(p.suffix == ".cc" for p in needed) and any(p.suffix == ".h" for p in needed)
    missing = [str(p.relative_to(serve)) for p in needed
               if not any(fnmatch(str(p.relative_to(serve)), pat) for pat in patterns["tritonstack.serve"])]
    assert missing == [], "add these to [tool.setuptools.package-data] tritonstack.serve"
