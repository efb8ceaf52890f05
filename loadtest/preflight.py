"""Checks before any load is sent: the server answers, the model (and version) is there and ready,
and the inputs a scenario would send fit it.

    info, rows = preflight(scenario, "127.0.0.1:8001")     # ConfigError / ClientError, one line each

A load test against a model that does not exist would otherwise send thousands of failing
requests and write a report of them; this turns that into one line before the first request.
"""

from __future__ import annotations

import logging
from typing import Any

from tritonstack.loadtest.inputs import request_rows
from tritonstack.loadtest.scenario import Scenario

from tritonstack.errors import ClientError, ConfigError, ModelNotFoundError, ModelNotReadyError

__all__ = ["preflight"]

_LOGGER = logging.getLogger(__name__)


def _where(scenario: Scenario) -> str:
    return f"model {scenario.model!r}" + (f" version {scenario.version}" if scenario.version else "")


def _model_info(scenario: Scenario, url: str, timeout_s: float) -> Any:
    from tritonstack.client import ClientOptions, RetryPolicy, TritonClient

    options = ClientOptions(timeout_s=timeout_s, retry=RetryPolicy(attempts=2), max_reconnect_backoff_s=1.0)
    with TritonClient(url, options) as client:
        try:
            info = client.model_info(scenario.model, scenario.version or None)
        except ModelNotFoundError as exc:
            raise ConfigError(
                f"{_where(scenario)} is not served at {url}; check --model/--model-version "
                f"(the server said: {_first_line(exc)})"
            ) from exc
        if not client.is_ready(scenario.model):
            raise ModelNotReadyError(f"{_where(scenario)} at {url} is not ready; wait for it to load")
    return info


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def preflight(scenario: Scenario, url: str, *, timeout_s: float = 10.0, count: int = 64) -> tuple[Any, list]:
    """The model's info and the requests the scenario will cycle through; raise before any load.

    Unknown model or version: ConfigError. Server unreachable or model not ready: the client's
    typed error (one line). Inputs that do not fit: ConfigError from `inputs`.
    """
    try:
        info = _model_info(scenario, url, timeout_s)
    except ClientError as exc:
        raise type(exc)(f"{_where(scenario)} at {url}: {_first_line(exc)}") from exc
    rows = request_rows(info, count=count, shapes=scenario.shapes, samples_path=scenario.inputs_path)
    _LOGGER.debug("preflight ok: %s, %d prepared requests", _where(scenario), len(rows))
    return info, rows
