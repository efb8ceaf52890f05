"""A server that accepts connections and never answers is reported in seconds, as stuck, in one line."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from tritonstack.ops.versions import TritonControl

from tritonstack.errors import ServerUnavailableError


@pytest.fixture()
def stuck_url() -> Iterator[str]:
    """A loopback port that accepts connections and never answers (like a hung Triton)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"127.0.0.1:{listener.getsockname()[1]}"  # Triton's gRPC endpoint


def test_a_stuck_server_is_reported_as_stuck_within_the_timeout(stuck_url: str) -> None:
    control = TritonControl(stuck_url, timeout_s=1.0, query_timeout_s=0.5)
    for call in (lambda: control.load("digits_mlp"), control.index, control.statistics):
        start = time.monotonic()
        with pytest.raises(ServerUnavailableError, match="did not answer in time"):
            call()
        print(f"\nstuck server reported after {time.monotonic() - start:.2f} s")
        assert time.monotonic() - start < 5


def test_versions_promote_against_a_stuck_server_exits_with_one_line(stuck_url: str, tmp_path) -> None:  # noqa: ANN001
    repo = tmp_path / "repo"
    (repo / "m" / "1").mkdir(parents=True)
    (repo / "m" / "config.pbtxt").write_text('name: "m"\nbackend: "python"\nmax_batch_size: 1\n')
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "tritonstack", "versions", "list", "m", "--url", stuck_url,
                           "--repository", str(repo)], capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - start
    print(f"\n`versions list` against a stuck server: exit {done.returncode} after {elapsed:.1f} s: "
          f"{done.stderr.strip()}")
    assert done.returncode != 0 and "did not answer in time" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert elapsed < 30
