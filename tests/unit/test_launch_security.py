"""The launch path's pieces without a server: env scrub, shim build, arguments, ports, users."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
from tritonstack.serve import launch_shim
from tritonstack.serve.config import ServerConfig, TlsConfig
from tritonstack.serve.launch_security import LaunchSecurity, http_host
from tritonstack.serve.ports import check_free, owns_listeners
from tritonstack.serve.sandbox import is_secret_variable, service_user

from tritonstack.errors import ConfigError

SOURCE = Path(launch_shim.__file__).parent / "shim" / "launch_shim.c"


def test_secret_variables_are_not_inherited() -> None:
    for name in ("TRITONSTACK_ADMIN_KEY", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "PGPASSWORD", "LD_PRELOAD"):
        assert is_secret_variable(name), name
    for name in ("PATH", "LD_LIBRARY_PATH", "HOME", "TRITONSTACK_ORT_THREADS", "OMP_NUM_THREADS"):
        assert not is_secret_variable(name), name


def test_shim_source_and_python_agree_on_names() -> None:
    text = SOURCE.read_text()
    for constant in (launch_shim.PLACEHOLDER, launch_shim.KEY_FILE_ENV, launch_shim.GUARD_ENV):
        assert f'"{constant}"' in text, constant


def test_shim_builds_once_and_exports_the_interposers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITONSTACK_BUILD_DIR", str(tmp_path))
    first = launch_shim.shim_library()
    if first is None:
        pytest.skip("no C compiler on this host")
    assert launch_shim.shim_library() == first and first.parent == tmp_path
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(first)], capture_output=True, text=True).stdout
    assert " shm_open" in symbols and " fchmod" in symbols


def _shim_run(tmp_path: Path, argv: list[str], key_file: Path | None) -> subprocess.CompletedProcess:
    library = launch_shim.shim_library()
    if library is None:
        pytest.skip("no C compiler on this host")
    env = {"PATH": "/usr/bin:/bin", **launch_shim.shim_environment(library, key_file, "tritonstack_")}
    script = 'import sys, os; print(sys.argv[1:]); print(os.environ.get("LD_PRELOAD"))'
    return subprocess.run(["/usr/bin/python3", "-c", script, *argv], env=env, capture_output=True, text=True)


def test_shim_swaps_the_placeholder_and_unlinks_the_key(tmp_path: Path) -> None:
    key_file = tmp_path / "admin.key"
    key_file.write_text("s3cret-key")
    result = _shim_run(tmp_path, [f"--rule=a,b:h={launch_shim.PLACEHOLDER}", "--other"], key_file)
    assert result.stdout.splitlines() == ["['--rule=a,b:h=s3cret-key', '--other']", "None"]
    assert not key_file.exists()


def test_shim_refuses_to_start_with_the_placeholder_and_no_key(tmp_path: Path) -> None:
    result = _shim_run(tmp_path, [f"--rule=x:h={launch_shim.PLACEHOLDER}"], tmp_path / "missing.key")
    assert result.returncode == 78 and "refusing to start" in result.stderr


def _config(tmp_path: Path, **kwargs) -> ServerConfig:  # noqa: ANN003
    return ServerConfig(repository=tmp_path, **kwargs)


def _cert(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("cert")
    key.write_text("key")
    return cert, key


def test_tls_arguments_restrict_http_inference_and_use_loopback(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    _cert(tmp_path)
    monkeypatch.chdir(tmp_path)
    tls = TlsConfig(server_cert=Path("cert.pem"), server_key=Path("key.pem"))
    assert tls.server_cert == tmp_path / "cert.pem"  # relative paths resolved where they were given
    config = _config(tmp_path, host="0.0.0.0", tls=tls, restrict_endpoints=False, http=True)
    guard = LaunchSecurity(workdir=tmp_path, admin_key="k", tls=tls)
    args = guard.arguments(config)
    assert "--http-restricted-api=inference:tritonstack-admin-key=k" in args
    assert not any("http" in a for a in guard.arguments(_config(tmp_path, tls=tls)))  # HTTP off: no rule
    assert not any(a.startswith("--grpc-restricted-protocol") for a in args)
    assert http_host(config) == "127.0.0.1" and http_host(_config(tmp_path, host="0.0.0.0")) == "0.0.0.0"


def test_key_argument_is_the_placeholder_when_the_shim_runs(tmp_path: Path) -> None:
    guard = LaunchSecurity(workdir=tmp_path, admin_key="k", shim=tmp_path / "shim.so")
    args = guard.arguments(_config(tmp_path, http=True))
    assert all(a.endswith(launch_shim.PLACEHOLDER) for a in args) and len(args) == 2
    assert len(guard.arguments(_config(tmp_path))) == 1  # HTTP off (the default): the gRPC rule only
    assert "k" not in " ".join(args).replace(launch_shim.PLACEHOLDER, "").split("=")[-1]


def test_a_port_in_use_is_one_line_naming_the_flag() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(ConfigError) as refused:
            check_free("127.0.0.1", {"grpc": port})
        assert owns_listeners(os.getpid(), [port])
        assert not owns_listeners(os.getppid(), [port])
    message = str(refused.value)
    assert "\n" not in message and f"grpc port {port}" in message and "--grpc-port" in message


def test_shared_accounts_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(ConfigError, match="nobody is shared"):
        service_user("nobody")
    assert service_user("root") is None


def test_admin_keys_that_would_break_the_rule_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="admin key"):
        _config(tmp_path, admin_key="a key:with,separators")
