"""Ports of the embedded server: free before launch, and owned by the process we started.

    check_free("127.0.0.1", {"grpc": 8001, "http": 8000, "metrics": 8002})   # ConfigError if taken
    owns_listeners(pid, [8001, 8000, 8002])                                 # True once it listens

A server answering on the port is not proof that it is ours (another tritonserver may hold it): the
listening socket's inode, from /proc/net/tcp{,6}, must be one of the child's open file descriptors.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterable
from pathlib import Path

from tritonstack.errors import ConfigError

__all__ = ["check_free", "listening_inodes", "owns_listeners"]

_LISTEN = "0A"


def check_free(host: str, ports: dict[str, int]) -> None:
    """Raise ConfigError naming the port and its flag when one of `ports` cannot be bound on `host`."""
    for kind, port in ports.items():
        if port == 0:
            continue
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as tritonserver binds
            try:
                sock.bind((host, port))
            except OSError as exc:
                what = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
                raise ConfigError(f"{kind} port {port} on {host} is {what}; pass --{kind}-port with "
                                  "another port (0 picks a free one) or stop what holds it") from exc


def listening_inodes(port: int) -> set[int]:
    """Socket inodes listening on TCP `port` (any address, IPv4 or IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(int(fields[9]))
    return inodes


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        entries = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for entry in entries:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{entry}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def owns_listeners(pid: int, ports: Iterable[int]) -> bool:
    """True when process `pid` holds a listening socket on every one of `ports`."""
    mine = _socket_inodes(pid)
    return all(listening_inodes(port) & mine for port in ports)
