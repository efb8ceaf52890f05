"""Check the gRPC TLS files before tritonserver is started with them.

    check_tls_files(TlsConfig(server_cert=Path("cert.pem"), server_key=Path("key.pem")))  # ConfigError

tritonserver given a file that is not PEM prints dozens of gRPC core lines and reports that its gRPC
port "is already in use"; here the file at fault is named in one line instead. The pair is loaded into
an `ssl.SSLContext` (the standard library's OpenSSL), which parses both and checks they match.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

from tritonstack.errors import ConfigError

__all__ = ["check_tls_files"]

_LOGGER = logging.getLogger(__name__)
_CERT_MARK = "-----BEGIN CERTIFICATE-----"


def check_tls_files(tls) -> None:  # noqa: ANN001 - a TlsConfig (config.py)
    """ConfigError naming the file when the server certificate, its key or the root certificate is not
    a PEM certificate/key, or when the key does not belong to the certificate."""
    _check_certificate(tls.server_cert, "--tls-cert")
    if tls.root_cert is not None:
        _check_certificate(tls.root_cert, "--tls-root-cert")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(tls.server_cert), str(tls.server_key), password=_no_password)
    except (ssl.SSLError, OSError, TypeError) as exc:
        raise ConfigError(_key_problem(tls, exc)) from exc
    _LOGGER.debug("TLS files %s and %s parsed and match", tls.server_cert, tls.server_key)


def _check_certificate(path: Path, flag: str) -> None:
    """ConfigError unless `path` holds at least one PEM certificate OpenSSL can parse."""
    try:
        text = Path(path).read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise ConfigError(f"{flag} {path} cannot be read ({exc.strerror}); pass a readable PEM "
                          "certificate") from exc
    if _CERT_MARK not in text:
        raise ConfigError(f"{flag} {path} is not a PEM certificate (no '{_CERT_MARK}' line); pass the "
                          "certificate file, e.g. cert.pem from `openssl req -x509 ... -out cert.pem`")
    try:
        ssl.create_default_context(cadata=text[text.index(_CERT_MARK):])
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"{flag} {path} has a PEM certificate OpenSSL cannot parse ({exc}); pass an "
                          "intact certificate file") from exc


def _key_problem(tls, exc: Exception) -> str:  # noqa: ANN001
    """The one line for a key that does not load with its (valid) certificate."""
    key = Path(tls.server_key)
    text = key.read_text(encoding="ascii", errors="replace") if key.is_file() else ""
    if "PRIVATE KEY-----" not in text:
        return (f"--tls-key {key} is not a PEM private key (no '-----BEGIN ... PRIVATE KEY-----' line); pass "
                "the key file, e.g. key.pem from `openssl req -x509 -nodes -keyout key.pem ...`")
    if "ENCRYPTED" in text:
        return f"--tls-key {key} is encrypted; tritonserver needs an unencrypted key (openssl ... -nodes)"
    return (f"--tls-key {key} does not load with --tls-cert {tls.server_cert} ({exc}); pass the key that "
            "belongs to that certificate")


def _no_password() -> bytes:
    """An encrypted key must fail to load, never prompt on the terminal."""
    return b""
