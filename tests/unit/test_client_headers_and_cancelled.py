"""Outsider 15a: a header gRPC cannot send raised grpc's untyped ExecuteBatchError (now a ConfigError
before any call), and calls Triton cancelled while stopping were an InternalServerError (now a
retryable ServerUnavailableError)."""

from __future__ import annotations

import pytest
from tritonstack.client import ClientOptions
from tritonstack.client.core import ClientCore
from tritonstack.client.errors import RETRYABLE, error_for_status

from tritonstack.errors import ConfigError, ServerUnavailableError


@pytest.mark.parametrize("headers", [{"X-Bad": "1"}, {"a b": "1"}, {"grpc-timeout": "1"}, {"k": "two\nlines"},
                                     {"k": "caf\u00e9"}])
def test_headers_grpc_cannot_send_are_a_config_error(headers: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="header"):
        ClientOptions(headers=headers)
    core = ClientCore("127.0.0.1:1", ClientOptions(headers={"x-ok": "1"}))
    with pytest.raises(ConfigError, match="header"):
        core.headers(headers)


def test_valid_headers_pass() -> None:
    core = ClientCore("127.0.0.1:1", ClientOptions(headers={"x-tenant": "a-1", "triton-grpc-protocol-k": "v=1"}))
    assert core.headers({"x-request": "7"}) == {"x-tenant": "a-1", "triton-grpc-protocol-k": "v=1", "x-request": "7"}


def test_a_call_the_server_cancelled_is_retryable() -> None:
    error = error_for_status("CANCELLED", "Cancelled", model="m")
    assert isinstance(error, ServerUnavailableError) and isinstance(error, RETRYABLE)


def test_an_async_client_made_outside_an_event_loop_is_a_config_error() -> None:
    """Outsider 15a: grpc's untyped 'RuntimeError: There is no current event loop'."""
    import subprocess
    import sys

    script = ("import asyncio\nfrom tritonstack.client import AsyncTritonClient\n"
              "from tritonstack.errors import ConfigError\n"
              "async def noop():\n    pass\nasyncio.run(noop())\n"
              "try:\n    AsyncTritonClient('127.0.0.1:1')\nexcept ConfigError as exc:\n    print('ConfigError', exc)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.startswith("ConfigError AsyncTritonClient needs an event loop"), (done.stdout, done.stderr)
