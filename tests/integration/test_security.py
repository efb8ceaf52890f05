"""Issue 12 against the real server: the launch path (A1, A2, A9, A11, A12, ports in use, broken models).

Each test prints its measured figure (`pytest -s`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException
from tritonstack.client import ClientOptions, RetryPolicy, TritonClient
from tritonstack.convert import Batching
from tritonstack.serve import EmbeddedServer, ServerConfig, TlsConfig
from tritonstack.serve.control import grpc_key_headers
from tritonstack.serve.launch_shim import PLACEHOLDER

from tests.integration.faults import add_sleepy_model, one
from tritonstack.errors import AccessDeniedError, ConfigError

ROOT = os.geteuid() == 0
KEY = "a1-" + os.urandom(12).hex()


@pytest.fixture(scope="module")
def sec_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with one Python-backend model (so a stub runs)."""
    repo = tmp_path_factory.mktemp("security") / "model_repository"
    add_sleepy_model(repo, "sleepy", delay_ms=1, batching=Batching())
    return repo


@pytest.fixture(scope="module")
def sec_server(sec_repo: Path) -> Iterator[EmbeddedServer]:
    """A server started with the key given explicitly AND exported as TRITONSTACK_ADMIN_KEY."""
    os.environ["TRITONSTACK_ADMIN_KEY"] = KEY
    try:
        with EmbeddedServer(ServerConfig(repository=sec_repo, admin_key=KEY, supervise=False)) as server:
            yield server
    finally:
        os.environ.pop("TRITONSTACK_ADMIN_KEY", None)


def _tree(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(p for c in children for p in _tree(int(c)))]


def _http(server: EmbeddedServer, path: str, body: bytes | None = None, key: str | None = None) -> int:
    request = urllib.request.Request(server.http_url + path, data=body,
                                     headers={"tritonstack-admin-key": key} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a1_key_is_in_no_cmdline_or_environ_and_still_guards_the_endpoints(sec_server: EmbeddedServer) -> None:
    pids = _tree(sec_server.pid)
    assert len(pids) >= 2, "no stub process: the test needs a Python-backend model loaded"
    for pid in pids:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert KEY.encode() not in cmdline and KEY.encode() not in environ, pid
        if pid != sec_server.pid:  # the stubs inherit neither the shim nor its variables
            assert b"LD_PRELOAD" not in environ and b"TRITONSTACK_SHIM" not in environ, pid
    assert PLACEHOLDER.encode() in Path(f"/proc/{sec_server.pid}/cmdline").read_bytes()
    assert not list(sec_server.workdir.glob("*.key"))
    uids = {Path(f"/proc/{pid}").stat().st_uid for pid in pids}
    if ROOT:
        assert 0 not in uids
    assert KEY not in (sec_server.workdir / "tritonserver.log").read_text(errors="replace")
    raw = grpcclient.InferenceServerClient(sec_server.grpc_url)
    for key in (None, PLACEHOLDER):
        with pytest.raises(InferenceServerException):
            raw.get_model_repository_index(headers=grpc_key_headers(key))
        with pytest.raises(InferenceServerException):
            raw.get_system_shared_memory_status(headers=grpc_key_headers(key))
    raw.get_model_repository_index(headers=grpc_key_headers(KEY))
    raw.get_system_shared_memory_status(headers=sec_server.grpc_admin_headers)
    raw.close()
    print(f"\nA1: key absent from cmdline+environ of {len(pids)} processes (server + stubs), uids {sorted(uids)}; "
          "placeholder refused, key accepted")


def test_a11_python_backend_shm_files_are_private(sec_server: EmbeddedServer) -> None:
    files = list(Path("/dev/shm").glob(f"{sec_server.shm_prefix}*"))
    assert files
    modes = {f"{f.stat().st_mode & 0o777:04o}" for f in files}
    assert modes == {"0600"}, modes
    owners = {f.stat().st_uid for f in files}
    if ROOT:
        assert 0 not in owners
    print(f"\nA11: {len(files)} Python-backend /dev/shm file(s), modes {sorted(modes)}, owner uids {sorted(owners)}")


def test_a12_a_stub_ipc_file_cannot_be_registered_and_the_server_survives(sec_server: EmbeddedServer) -> None:
    stub_file = next(Path("/dev/shm").glob(f"{sec_server.shm_prefix}*"))
    raw = grpcclient.InferenceServerClient(sec_server.grpc_url)
    with pytest.raises(InferenceServerException) as refused:
        raw.register_system_shared_memory("evil", f"/{stub_file.name}", 1 << 20,
                                          headers=sec_server.grpc_admin_headers)
    out = grpcclient.InferRequestedOutput("y")
    out.set_shared_memory("evil", 4)
    inp = grpcclient.InferInput("x", [1, 1], "FP32")
    inp.set_data_from_numpy(one())
    with pytest.raises(InferenceServerException):
        raw.infer("sleepy", [inp], outputs=[out])
    assert raw.is_server_live() and raw.is_server_ready()
    result = raw.infer("sleepy", [inp]).as_numpy("y")
    np.testing.assert_array_equal(result, one())
    assert sec_server.process.poll() is None
    raw.close()
    print(f"\nA12: registering {stub_file.name[:24]}... refused ({refused.value.message()[:60]}); "
          "server alive and answering")


def _certs(folder: Path) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(folder / "key.pem"),
                    "-out", str(folder / "cert.pem")], check=True, capture_output=True)
    os.chmod(folder / "key.pem", 0o600)  # readable by root only: the launcher hands the server a copy


def test_a9_mutual_tls_leaves_no_plaintext_inference_and_relative_paths_work(
        sec_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _certs(tmp_path)
    monkeypatch.chdir(tmp_path)
    tls = TlsConfig(server_cert=Path("cert.pem"), server_key=Path("key.pem"), root_cert=Path("cert.pem"))
    config = ServerConfig(repository=sec_repo, host="0.0.0.0", tls=tls, supervise=False)  # noqa: S104
    with EmbeddedServer(config) as server:  # started at all: the launcher's calls went over mutual TLS
        assert server.http_url is None and _listening_ports(server.pid) == {server.ports["grpc"],
                                                                            server.ports["metrics"]}
        assert server.model_states()[0]["state"] == "READY"
        url = f"127.0.0.1:{server.ports['grpc']}"
        mutual = grpcclient.InferenceServerClient(url, ssl=True, root_certificates="cert.pem",
                                                  private_key="key.pem", certificate_chain="cert.pem")
        inp = grpcclient.InferInput("x", [1, 1], "FP32")
        inp.set_data_from_numpy(one())
        np.testing.assert_array_equal(mutual.infer("sleepy", [inp]).as_numpy("y"), one())
        mutual.close()
        no_client_cert = ClientOptions(ssl=True, root_certificates="cert.pem", timeout_s=3,
                                       retry=RetryPolicy(attempts=1))
        with TritonClient(url, no_client_cert) as client:
            assert not client.is_ready()
        listed = _versions_list(url, server.admin_key, sec_repo, "--tls-root-cert", "cert.pem",
                                "--tls-cert", "cert.pem", "--tls-key", "key.pem")
        assert listed.returncode == 0 and "READY" in listed.stdout, listed.stdout + listed.stderr
        plain = _versions_list(url, server.admin_key, sec_repo)
        assert plain.returncode != 0 and "Traceback" not in plain.stderr
        assert len(plain.stderr.strip().splitlines()) == 1, plain.stderr
        half = _versions_list(url, server.admin_key, sec_repo, "--tls-cert", "cert.pem")
        assert half.returncode == 2 and "--tls-key" in half.stderr, half.stderr
    print("\nA9: mutual TLS from relative paths; no HTTP listener (only gRPC and metrics); the launcher's "
          "control calls, a client with a certificate and `versions list --tls-*` answered over gRPC, a "
          f"client without one refused; `versions list` without TLS files: {plain.stderr.strip()}")


def _versions_list(url: str, key: str, repository: Path, *tls: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "tritonstack", "versions", "list", "sleepy", "--url", url,
            "--repository", str(repository), *tls]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60,  # noqa: S603
                          env={**os.environ, "TRITONSTACK_ADMIN_KEY": key, "COLUMNS": "200"})


def test_a9_with_http_asked_for_tls_leaves_http_inference_behind_the_key(sec_repo: Path, tmp_path: Path) -> None:
    _certs(tmp_path)
    tls = TlsConfig(server_cert=tmp_path / "cert.pem", server_key=tmp_path / "key.pem")
    config = ServerConfig(repository=sec_repo, host="0.0.0.0", tls=tls, supervise=False, http=True)  # noqa: S104
    with EmbeddedServer(config) as server:
        http_port = server.ports["http"]
        assert server.http_url == f"http://127.0.0.1:{http_port}"
        with socket.socket() as probe:  # HTTP listens on loopback only, whatever --host says
            probe.settimeout(1)
            assert probe.connect_ex((_outside_address(), http_port)) != 0
        body = b'{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[1.0]}]}'
        plain = _http(server, "/v2/models/sleepy/infer", body)
        assert plain == 403
        assert _http(server, "/v2/models/sleepy/infer", body, server.admin_key) == 200
    print(f"\nA9 (--http): plaintext HTTP inference without the key -> {plain}, with it 200; HTTP on 127.0.0.1 only")


def _listening_ports(pid: int) -> set[int]:
    """The TCP ports process `pid` listens on (IPv4 and IPv6)."""
    inodes = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == "0A" and f"socket:[{fields[9]}]" in inodes:
                ports.add(port)
    return ports


def test_a2_http_is_off_by_default_and_control_goes_over_grpc(sec_server: EmbeddedServer) -> None:
    from tritonstack.ops.status import cache_counts
    from tritonstack.ops.versions import TritonControl

    assert sec_server.http_url is None and set(sec_server.ports) == {"grpc", "metrics"}
    listening = _listening_ports(sec_server.pid)
    assert listening == {sec_server.ports["grpc"], sec_server.ports["metrics"]}, listening
    assert "--allow-http=false" in Path(f"/proc/{sec_server.pid}/cmdline").read_text().split("\0")
    control = TritonControl(sec_server.grpc_url, admin_key=KEY)
    control.load("sleepy")  # a reload of the loaded model
    sec_server.unload_model("sleepy")
    assert not control.is_ready("sleepy", 1)
    sec_server.load_model("sleepy")
    states = {(s["name"], s.get("version")): s["state"] for s in control.index()}
    assert states[("sleepy", "1")] == "READY" and control.is_ready("sleepy", 1)
    stats = {s["name"]: s for s in control.statistics()}
    assert isinstance(stats["sleepy"]["inference_count"], int)
    assert cache_counts(list(stats.values()))[("sleepy", "1")] == (0, 0)
    with pytest.raises(AccessDeniedError):
        TritonControl(sec_server.grpc_url).index()
    status = _cli("ops", "status", "--repository", str(sec_server.config.repository), "--url", sec_server.grpc_url,
                  "--admin-key", KEY, "--allow-unverified")
    out, err = status.communicate(timeout=60)
    assert status.returncode == 0 and any("sleepy" in r and "READY" in r for r in out.splitlines()), (out, err)
    answer = _post_body(sec_server.ports["metrics"], 300 << 20)  # the one HTTP listener left: another library
    time.sleep(1)
    assert answer.startswith(b"HTTP/1.1 4") and sec_server.process.poll() is None, answer
    print(f"\nA2: default server listens on {sorted(listening)} only (gRPC, metrics; no HTTP listener); "
          "load/unload/index/statistics (and `ops status --url`) over gRPC with the key, refused without; "
          "a 300 MiB POST to the "
          f"metrics port -> {answer.splitlines()[0].decode()!r}, server alive")


def _post_body(port: int, size: int) -> bytes:
    """POST a `size`-byte body to 127.0.0.1:`port` in 1 MiB pieces; the first bytes of the answer."""
    chunk = b"x" * (1 << 20)
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(f"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode())
        for start in range(0, size, len(chunk)):
            sock.sendall(chunk[:size - start])
        return sock.recv(200)


def _outside_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))  # no packet is sent: picks the outbound interface address
            return sock.getsockname()[0]
        except OSError:
            pytest.skip("no non-loopback address on this host")


def _cli(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRITONSTACK_ADMIN_KEY"}
    return subprocess.Popen([str(Path(sys.executable).parent / "tritonstack"), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**env, "COLUMNS": "400"})


def test_serve_on_a_port_in_use_is_one_line_and_no_banner(sec_repo: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(ConfigError, match=f"grpc port {port}"):
            EmbeddedServer(ServerConfig(repository=sec_repo, grpc_port=port)).start()
        started = time.monotonic()
        proc = _cli("serve", "--repository", str(sec_repo), "--grpc-port", "0", "--metrics-port", "0",
                    "--http", "--http-port", str(port))
        out, err = proc.communicate(timeout=60)
        elapsed = time.monotonic() - started
    assert proc.returncode == 2, (out, err)
    assert "Traceback" not in out + err and "serving" not in out and "gRPC" not in out
    warnings = [line for line in out.splitlines() if "256 MiB" in line]
    assert len(warnings) == 1 and "HTTP is on" in warnings[0], out
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and str(port) in lines[0] and "--http-port" in lines[0], err
    print(f"\nports: `serve --http --http-port {port}` (held) -> exit 2 in {elapsed:.1f} s, one line: "
          f"{lines[0]!r}; the --http warning: {warnings[0]!r}")


def test_broken_model_folders_are_listed_while_the_others_serve(sec_repo: Path, tmp_path: Path) -> None:
    repo = tmp_path / "model_repository"
    add_sleepy_model(repo, "good", delay_ms=1, batching=Batching())
    (repo / "malformed").mkdir()
    (repo / "malformed" / "config.pbtxt").write_text("name: 'malformed' backend: python }}} not a config")
    (repo / "empty").mkdir()
    add_sleepy_model(repo, "no_version", delay_ms=1, batching=Batching())
    for f in (repo / "no_version" / "1").iterdir():
        f.unlink()
    (repo / "no_version" / "1").rmdir()
    add_sleepy_model(repo, "unreadable", delay_ms=1, batching=Batching())
    os.chmod(repo / "unreadable" / "1" / "model.py", 0o600 if ROOT else 0o000)
    proc = _cli("serve", "--repository", str(repo), "--grpc-port", "0", "--http-port", "0", "--metrics-port", "0")
    try:
        out = _read_until(proc, "serving", timeout_s=120)
    finally:
        proc.send_signal(15)
        rest, err = proc.communicate(timeout=60)
    rows = {name: line for line in out.splitlines() for name in ("good", "malformed", "empty", "no_version",
                                                                   "unreadable") if f" {name} " in line}
    assert "READY" in rows["good"], out
    assert "HTTP     off" in out, out  # the default: no HTTP endpoint
    for broken in ("malformed", "empty", "no_version", "unreadable"):
        assert "UNAVAILABLE" in rows[broken] or "SKIPPED" in rows[broken], (broken, out)
    assert proc.returncode == 0 and "Traceback" not in out + rest + err, (out, rest, err)
    assert "no model is READY" not in out
    print(f"\nbroken folders: {len(rows) - 1} listed UNAVAILABLE/SKIPPED with a reason, 'good' READY, exit 0")


def test_a_repository_with_no_model_ready_is_said_so(tmp_path: Path) -> None:
    repo = tmp_path / "model_repository"
    add_sleepy_model(repo, "unreadable", delay_ms=1, batching=Batching())
    (repo / "unreadable" / "1" / "model.py").write_text("raise SystemExit('broken on purpose')\n")
    proc = _cli("serve", "--repository", str(repo), "--grpc-port", "0", "--metrics-port", "0")
    try:
        out = _read_until(proc, "serving", timeout_s=120)
    finally:
        proc.send_signal(15)
        rest, err = proc.communicate(timeout=60)
    assert "warning: no model is READY" in out, out
    assert proc.returncode == 0 and "Traceback" not in out + rest, (out, rest, err)
    print("\nno model READY: serve says so in one warning line")


def _read_until(proc: subprocess.Popen[str], marker: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"no {marker!r} in the output:\n{''.join(seen)}")
