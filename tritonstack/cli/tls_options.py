"""The client-side TLS options of the commands that call a running Triton (`versions`, `ops status`).

    def command(..., tls_root_cert: TlsRootCert = None, tls_cert: TlsCert = None, tls_key: TlsKey = None):
        control = TritonControl(url, admin_key=key, tls=client_tls(tls_root_cert, tls_cert, tls_key))

Each option also reads an environment variable, so a shell set up once for a TLS server needs no flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from tritonstack.serve.control import ClientTls

__all__ = ["TlsCert", "TlsKey", "TlsRootCert", "client_tls"]

TlsRootCert = Annotated[Path | None, typer.Option(  # noqa: UP007
    envvar="TRITONSTACK_TLS_ROOT_CERT", help="CA certificate (PEM) that signed the server's: the server "
    "was started with --tls-cert (for a self-signed one, that certificate).")]
TlsCert = Annotated[Path | None, typer.Option(  # noqa: UP007
    envvar="TRITONSTACK_TLS_CERT", help="Client certificate (PEM), for a server with --tls-root-cert.")]
TlsKey = Annotated[Path | None, typer.Option(  # noqa: UP007
    envvar="TRITONSTACK_TLS_KEY", help="Client key (PEM), with --tls-cert.")]


def client_tls(root_cert: Path | None, cert: Path | None, key: Path | None) -> ClientTls | None:
    """The TLS files given, checked (ConfigError in one line), or None for a plaintext channel."""
    from tritonstack.serve.control import ClientTls

    if root_cert is None and cert is None and key is None:
        return None
    return ClientTls(root_cert=root_cert, cert=cert, key=key)
