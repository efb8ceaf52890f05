"""`serve` refuses, in one line and before tritonserver starts, what made it fail confusingly (outsider
13c defect 7): one port for two endpoints (tritonserver's 21-line usage text), and TLS files that are
not PEM (45 lines of gRPC core errors ending in a false "grpc port ... is already in use")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tritonstack.serve import ServerConfig, TlsConfig
from tritonstack.serve.tls_check import check_tls_files

from tritonstack.errors import ConfigError


def _serve(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-m", "tritonstack", "serve", *args], capture_output=True,
                          text=True, timeout=120)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    print(f"\n{lines}")
    return lines


def test_one_port_for_two_endpoints_is_one_line(tmp_path: Path) -> None:
    lines = _serve("--repository", str(tmp_path), "--grpc-port", "18451", "--metrics-port", "18451")
    assert len(lines) == 1 and "--grpc-port and --metrics-port are both 18451" in lines[0]


def test_http_port_clashes_count_only_with_http(tmp_path: Path) -> None:
    ServerConfig(repository=tmp_path, grpc_port=18451, http_port=18451)  # HTTP off: its port unused
    with pytest.raises(ConfigError, match="--http-port and --metrics-port are both 9"):
        ServerConfig(repository=tmp_path, http=True, http_port=9, metrics_port=9)
    ServerConfig(repository=tmp_path, grpc_port=0, metrics_port=0)  # 0 twice: two free ports


def test_non_pem_tls_files_are_named_in_one_line(tmp_path: Path) -> None:
    key = tmp_path / "key.txt"
    key.write_text("this is not a key\n")
    lines = _serve("--repository", str(tmp_path), "--tls-cert", str(key), "--tls-key", str(key),
                   "--grpc-port", "0", "--metrics-port", "0")
    assert len(lines) == 1 and f"--tls-cert {key} is not a PEM certificate" in lines[0]
    assert "already in use" not in lines[0]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
                   check=True, capture_output=True, timeout=60)
    return folder / "cert.pem", folder / "key.pem"


def test_a_real_pair_passes_and_a_bad_key_is_named(pair: tuple[Path, Path], tmp_path: Path) -> None:
    cert, key = pair
    check_tls_files(TlsConfig(server_cert=cert, server_key=key, root_cert=cert))
    junk = tmp_path / "junk.txt"
    junk.write_text("junk\n")
    with pytest.raises(ConfigError, match=f"--tls-key {junk} is not a PEM private key"):
        check_tls_files(TlsConfig(server_cert=cert, server_key=junk))
    with pytest.raises(ConfigError, match=f"--tls-root-cert {junk} is not a PEM certificate"):
        check_tls_files(TlsConfig(server_cert=cert, server_key=key, root_cert=junk))
    with pytest.raises(ConfigError, match="does not load with --tls-cert"):
        other = tmp_path / "other.pem"
        subprocess.run(["openssl", "genrsa", "-out", str(other), "2048"], check=True, capture_output=True,
                       timeout=60)
        check_tls_files(TlsConfig(server_cert=cert, server_key=other))


def test_a_free_port_is_never_blamed_for_a_failed_start(tmp_path: Path) -> None:
    """tritonserver logs "already in use" for any gRPC start-up failure; the port is blamed only if it
    really cannot be bound."""
    import socket

    from tritonstack.serve import EmbeddedServer

    from tritonstack.errors import ServerStartError

    server = EmbeddedServer(ServerConfig(repository=tmp_path))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    server.ports, server.workdir = {"grpc": free, "metrics": 0}, tmp_path
    (tmp_path / "tritonserver.log").write_text(f"failed to start GRPC service: Socket '127.0.0.1:{free}' "
                                               "already in use\n")
    server.process = subprocess.Popen(["true"])  # noqa: S607 - an exited process
    server.process.wait(timeout=30)
    assert isinstance(server._start_failure(), ServerStartError)  # noqa: SLF001
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", free))
        holder.listen()
        failure = server._start_failure()  # noqa: SLF001
    assert isinstance(failure, ConfigError) and f"grpc port {free} is already in use" in str(failure)
