"""What one start of tritonserver runs with, so that no other local user can get the admin key.

    guard = LaunchSecurity.prepare(workdir, config, admin_key=key, shm_prefix=prefix, install=install)
    argv = [..., f"--http-restricted-api=...:{ADMIN_HEADER}={guard.key_argument}"]
    subprocess.Popen(argv, env=guard.environment(env), preexec_fn=guard.preexec, umask=0o077, ...)

- The key reaches tritonserver through a 0600 file in its private 0700 work dir, read and unlinked by
  the launch shim before `main()`; the command line holds only a placeholder (`launch_shim.py`).
- Started as root, the server and its stubs run as the dedicated user (`sandbox.py`), which owns the
  work dir; the repository must be readable by it, checked as that user before launch.
- TLS files are copied into the work dir (owned by that user, 0600), so relative paths and keys
  readable only by root both work.
- Without a C compiler there is no shim: the key is on the command line again, and `warnings` says so.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tritonstack.serve.config import ADMIN_HEADER, RESTRICTED_APIS, ServerConfig, TlsConfig
from tritonstack.serve.launch_shim import PLACEHOLDER, shim_environment, shim_library
from tritonstack.serve.sandbox import (
    ServiceUser,
    child_setup,
    runtime_exposures,
    service_user,
    unreadable_paths,
)

from tritonstack.errors import ConfigError

__all__ = ["GUARD_PREFIX", "LaunchSecurity", "http_host"]

_LOGGER = logging.getLogger(__name__)
#: /dev/shm names `<GUARD_PREFIX><digit>...` the server refuses to register as system shared memory:
#: its stubs' IPC files and those of any other embedded server here (`tritonstack_<pid>_...`).
GUARD_PREFIX = "tritonstack_"
NO_SHIM_WARNING = ("no C compiler to build the launch shim (install gcc): the admin key is on "
                   "tritonserver's command line, readable by every local user in `ps`; the server's own "
                   "shared-memory files can be registered; its stubs' IPC files are mode 0644")


@dataclass
class LaunchSecurity:
    """The user, key file, shim and TLS copies of one start."""

    workdir: Path
    admin_key: str
    user: ServiceUser | None = None
    shim: Path | None = None
    key_file: Path | None = None
    tls: TlsConfig | None = None
    exposures: dict[Path, set[str]] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)  # model -> reason
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def prepare(cls, workdir: Path, config: ServerConfig, *, admin_key: str,
                runtime: list[Path]) -> LaunchSecurity:
        """Set up `workdir` for a start; raise ConfigError/ServerStartError with one line if impossible."""
        guard = cls(workdir=workdir, admin_key=admin_key, user=service_user(config.user))
        if guard.user is not None:
            guard._check_repository(config.repository)
            needed = [Path(sys.base_prefix), Path(sys.prefix), *runtime]
            guard.exposures = runtime_exposures(needed, guard.user)
            os.chown(workdir, guard.user.uid, guard.user.gid)
        guard._stage_shim()
        guard.tls = guard._stage_tls(config.tls)
        return guard

    def _check_repository(self, repository: Path) -> None:
        assert self.user is not None
        root = repository.resolve()
        for path in unreadable_paths(root, self.user):
            model = path.relative_to(root).parts[0] if path != root else ""
            self.unreadable.setdefault(model, f"{path} is not readable by user {self.user.name}: "
                                              "`chmod -R o+rX` it, or pass --user root")
        if "" in self.unreadable:
            raise ConfigError(f"the repository {self.unreadable['']}")

    def _stage_shim(self) -> None:
        built = shim_library()
        if built is None:
            self.warnings.append(NO_SHIM_WARNING)
            return
        self.shim = self.workdir / "launch_shim.so"
        shutil.copyfile(built, self.shim)
        os.chmod(self.shim, 0o644)
        self.key_file = self._private_file("admin.key", self.admin_key.encode())

    def _private_file(self, name: str, data: bytes) -> Path:
        path = self.workdir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, data)
            if self.user is not None:
                os.fchown(fd, self.user.uid, self.user.gid)
        finally:
            os.close(fd)
        return path

    def _stage_tls(self, tls: TlsConfig | None) -> TlsConfig | None:
        if tls is None:
            return None
        (self.workdir / "tls").mkdir(mode=0o700)
        if self.user is not None:
            os.chown(self.workdir / "tls", self.user.uid, self.user.gid)
        copy = {name: self._private_file(f"tls/{name}.pem", Path(path).read_bytes())
                for name, path in (("server_cert", tls.server_cert), ("server_key", tls.server_key),
                                   ("root_cert", tls.root_cert)) if path is not None}
        return TlsConfig(**copy)

    def arguments(self, config: ServerConfig) -> list[str]:
        """The restricted-endpoint and TLS arguments of tritonserver.

        HTTP is off by default (config.py). When it is asked for with TLS, HTTP (plaintext, and without
        client certificates) serves no inference without the admin key, and listens on loopback only
        (`http_host`); clients use gRPC over TLS."""
        key = f"{ADMIN_HEADER}={self.key_argument}"
        http_apis = [*RESTRICTED_APIS] if config.restrict_endpoints and config.http else []
        http_apis += ["inference"] if config.tls is not None and config.http else []
        grpc_rule = f"--grpc-restricted-protocol={','.join(RESTRICTED_APIS)}:{key}"
        args = [grpc_rule] if config.restrict_endpoints else []
        args += [f"--http-restricted-api={','.join(http_apis)}:{key}"] if http_apis else []
        if self.tls is not None:
            args += ["--grpc-use-ssl=true", f"--grpc-server-cert={self.tls.server_cert}",
                     f"--grpc-server-key={self.tls.server_key}"]
            if self.tls.root_cert is not None:
                args += ["--grpc-use-ssl-mutual=true", f"--grpc-root-cert={self.tls.root_cert}"]
        return args

    @property
    def key_argument(self) -> str:
        """What goes on the command line where the key belongs: the placeholder when the shim runs."""
        return PLACEHOLDER if self.shim is not None else self.admin_key

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        """`env` plus what loads the shim; HOME is the work dir when running as the service user."""
        env = dict(env)
        if self.shim is not None:
            env.update(shim_environment(self.shim, self.key_file, GUARD_PREFIX))
        if self.user is not None:
            env.update(HOME=str(self.workdir), USER=self.user.name, LOGNAME=self.user.name)
        return env

    @property
    def preexec(self):  # noqa: ANN201 - a preexec_fn
        """The child's setup: private mounts where the runtime needs them, the user, die with parent."""
        return child_setup(self.user, self.exposures)

    def key_consumed(self) -> bool:
        """True once the shim has read and removed the key file (or when there is none)."""
        return self.key_file is None or not self.key_file.exists()


def http_host(config: ServerConfig) -> str:
    """Where HTTP listens: the bind address, or loopback when TLS is on (see `arguments`)."""
    if config.tls is None:
        return config.host
    return "::1" if ":" in config.host else "127.0.0.1"
