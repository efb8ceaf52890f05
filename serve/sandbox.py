"""Who tritonserver runs as: never root. Started by root, it runs as a dedicated unprivileged user.

    user = service_user(requested=None)        # None when not root (the server runs as the caller)
    problems = unreadable_paths(repository, user)
    setup = child_setup(user, runtime_exposures(paths, user))
    subprocess.Popen(argv, preexec_fn=setup, umask=0o077, ...)

The dedicated user (`tritonstack`, created with `useradd --system` when missing) owns nothing but
the server's private work dir. It is not `nobody`, which other daemons (and so an attacker) may share.
The Python runtime the stubs need may sit under a folder that user cannot enter (a pyenv under the
0700 /root): the child then gets a private mount namespace in which that folder is an empty tmpfs
(mode 0711) holding only bind mounts of what is needed; everything else in it stays hidden.
"""

from __future__ import annotations

import ctypes
import logging
import os
import pwd
import signal
import stat
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tritonstack.errors import ConfigError, ServerStartError

__all__ = ["SERVICE_USER", "ServiceUser", "child_setup", "is_secret_variable", "runtime_exposures",
           "service_user", "unreadable_paths"]

_LOGGER = logging.getLogger(__name__)
SERVICE_USER = "tritonstack"
_SHARED_USERS = {"nobody", "nfsnobody", "daemon"}
_CLONE_NEWNS, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x00020000, 4096, 1 << 14, 1 << 18
_PR_SET_PDEATHSIG = 1
_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "COOKIE", "SESSION")


@dataclass(frozen=True, kw_only=True)
class ServiceUser:
    """The unprivileged account tritonserver and its stubs run as."""

    name: str
    uid: int
    gid: int


def is_secret_variable(name: str) -> bool:
    """True for variables the server and its stubs must not inherit: the admin key, credentials
    (`*KEY*`, `*TOKEN*`, `*SECRET*`, `*PASSWORD*`, ...) and a caller's LD_PRELOAD."""
    upper = name.upper()
    return upper == "LD_PRELOAD" or any(word in upper for word in _SECRET_WORDS)


def service_user(requested: str | None) -> ServiceUser | None:
    """The account to drop to, or None to run as the caller (not root, or root by explicit choice)."""
    if os.geteuid() != 0:
        if requested not in (None, pwd.getpwuid(os.geteuid()).pw_name):
            raise ConfigError(f"--user {requested} needs root; started as an unprivileged user, the "
                              "server runs as that user: leave --user out")
        return None
    name = requested or SERVICE_USER
    if name == "root":
        _LOGGER.warning("tritonserver runs as root (--user root): a model's code runs with full privileges")
        return None
    if name in _SHARED_USERS:
        raise ConfigError(f"--user {name} is shared with other daemons (an attacker may run as it); "
                          f"use a dedicated account such as {SERVICE_USER}")
    return _account(name)


def _account(name: str) -> ServiceUser:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if name != SERVICE_USER:
            raise ConfigError(f"user {name!r} does not exist; create it or leave --user out "
                              f"(the dedicated user {SERVICE_USER!r} is created on demand)") from None
        _create_user(name)
        entry = pwd.getpwnam(name)
    if entry.pw_uid == 0:
        raise ConfigError(f"user {name!r} has uid 0; pick an unprivileged account")
    return ServiceUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid)


def _create_user(name: str) -> None:
    command = ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin",
               name]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)  # noqa: S603
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", None) or exc
        raise ServerStartError(f"cannot create the service user {name!r} ({str(detail).strip()}); create "
                               f"it with `{' '.join(command)}` or pass --user root") from exc
    _LOGGER.info("created the system user %s for tritonserver", name)


def _can_enter(path: Path, user: ServiceUser, bits: int = 1) -> bool:
    """Whether `user` has `bits` (1 = x, 5 = r+x) on `path` by its owner/group/other mode bits."""
    st = path.stat()
    shift = 6 if st.st_uid == user.uid else 3 if st.st_gid == user.gid else 0
    return (st.st_mode >> shift) & bits == bits


def blocking_ancestor(path: Path, user: ServiceUser, *, final_bits: int = 5,
                      skip: Path | None = None) -> Path | None:
    """The first folder on the way to `path` (included) that `user` cannot enter, or None.

    `final_bits` is what `path` itself needs (5: list and enter); `skip` is a folder taken as open."""
    path = Path(path).resolve()
    for folder in [*reversed(path.parents), path]:
        if folder != skip and not _can_enter(folder, user, final_bits if folder == path else 1):
            return folder
    return None


def runtime_exposures(paths: Iterable[Path], user: ServiceUser) -> dict[Path, set[str]]:
    """{folder the user cannot enter: names of its children that must be reachable} for `paths`."""
    exposures: dict[Path, set[str]] = {}
    for path in (Path(p).resolve() for p in paths):
        block = blocking_ancestor(path, user, final_bits=1)
        if block is None:
            continue
        child = block / path.relative_to(block).parts[0] if block != path else path
        deeper = blocking_ancestor(path, user, final_bits=1, skip=block)
        if block == path or not child.is_dir() or deeper is not None:
            raise ServerStartError(f"user {user.name} cannot reach {path} (blocked at {block}); "
                                   f"`chmod o+x {block}` or pass --user root")
        exposures.setdefault(block, set()).add(child.name)
    return exposures


def unreadable_paths(repository: Path, user: ServiceUser) -> list[Path]:
    """Paths under `repository` that `user` cannot read (or enter), checked by running as that user."""
    repository = Path(repository).resolve()
    block = blocking_ancestor(repository, user)
    if block is not None:
        raise ConfigError(f"user {user.name} cannot read the repository {repository}: {block} is mode "
                          f"{stat.S_IMODE(block.stat().st_mode):04o}; `chmod o+rx {block}` (and o+rx on the "
                          "repository), or pass --user root")
    command = ["find", str(repository), "(", "!", "-readable", "-o", "-type", "d", "!", "-executable", ")",
               "-print", "-prune"]
    result = subprocess.run(command, user=user.uid, group=user.gid, extra_groups=[],  # noqa: S603
                            capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"},
                            check=False)
    return [Path(line) for line in result.stdout.splitlines() if line]


def child_setup(user: ServiceUser | None, exposures: dict[Path, set[str]]) -> Callable[[], None]:
    """A preexec_fn: private mounts for `exposures`, drop to `user`, die with the parent."""

    def setup() -> None:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        if exposures:
            _expose(libc, exposures)
        if user is not None:
            os.setgroups([])
            os.setgid(user.gid)
            os.setuid(user.uid)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)  # after the uid change, which would clear it

    return setup


def _expose(libc: ctypes.CDLL, exposures: dict[Path, set[str]]) -> None:
    def check(result: int, what: str) -> None:
        if result != 0:
            raise OSError(ctypes.get_errno(), what)

    check(libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "mount --make-rprivate /")
    for folder, children in exposures.items():
        fds = {name: os.open(folder / name, os.O_PATH) for name in children}
        check(libc.mount(b"tmpfs", bytes(folder), b"tmpfs", 0, b"mode=0711,size=64k"), f"tmpfs on {folder}")
        for name, fd in fds.items():
            (folder / name).mkdir()
            check(libc.mount(f"/proc/self/fd/{fd}".encode(), bytes(folder / name), None, _MS_BIND | _MS_REC,
                             None), f"bind {folder / name}")
            os.close(fd)
