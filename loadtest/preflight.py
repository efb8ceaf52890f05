"""Checks before any load is sent: the server answers, the model (and version) is there and ready,
and the inputs a scenario would send fit it.

    info, rows = preflight(scenario, "127.0.0.1:8001")     # ConfigError / ClientError, one line each

A load test against a model that does not exist would otherwise send thousands of failing
requests and write a report of them; this turns that into one line before the first request.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from tritonstack.loadtest.inputs import request_rows, sent_shapes
from tritonstack.loadtest.scenario import Scenario

from tritonstack.errors import ClientError, ConfigError, ModelNotFoundError, ModelNotReadyError

__all__ = ["check_maxima", "in_context", "max_input_dims", "name_server", "preflight"]

_LOGGER = logging.getLogger(__name__)


def _where(scenario: Scenario) -> str:
    return f"model {scenario.model!r}" + (f" version {scenario.version}" if scenario.version else "")


def _model_info(scenario: Scenario, url: str, timeout_s: float, shown: str) -> Any:
    from tritonstack.client import ClientOptions, RetryPolicy, TritonClient

    options = ClientOptions(timeout_s=timeout_s, retry=RetryPolicy(attempts=2), max_reconnect_backoff_s=1.0)
    with TritonClient(url, options) as client:
        try:
            info = client.model_info(scenario.model, scenario.version or None)
        except ModelNotFoundError as exc:
            raise ConfigError(
                f"{_where(scenario)} is not served at {shown}; check --model/--model-version "
                f"(the server said: {_first_line(exc)})"
            ) from exc
        if not client.is_ready(scenario.model):
            raise ModelNotReadyError(f"{_where(scenario)} at {shown} is not ready; wait for it to load")
    return info


def in_context(line: str, where: str, model: str, url: str) -> str:
    """`line` with the model and server it is about, each said once: a message that names the model
    already (`model 'x' ...`) keeps its own wording and gets the server only if it lacks it."""
    if repr(model) in line:
        return line if url in line else f"{line} (server {url})"
    return f"{where} at {url}: {line}"


def name_server(text: str, url: str, shown: str) -> str:
    """`text` with the server's address `url` (gRPC's `ipv4:` form too) replaced by `shown`."""
    return re.sub(rf"(ipv[46]:)?{re.escape(url)}", shown, text)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _config_json(scenario: Scenario, url: str, timeout_s: float) -> dict[str, Any]:
    """The model's config as the server loaded it (JSON form); {} when it cannot be had."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    try:
        return client.get_model_config(
            scenario.model, scenario.version, as_json=True, client_timeout=timeout_s
        ).get("config", {})
    except Exception as exc:  # noqa: BLE001 - model_info above already answered; this only adds limits
        _LOGGER.warning("could not read the config of %s for its input limits: %s", _where(scenario), exc)
        return {}
    finally:
        client.close()


def max_input_dims(config: dict[str, Any]) -> dict[str, list[int]]:
    """Per input, the largest dims (without the batch axis) the converter declared in the config's
    `max_input_dims` parameter (a JSON object); {} when there is none."""
    text = config.get("parameters", {}).get("max_input_dims", {}).get("string_value", "")
    try:
        limits = json.loads(text) if text else {}
    except ValueError:
        _LOGGER.warning("ignoring a max_input_dims parameter that is not JSON: %r", text)
        return {}
    return {str(k): [int(d) for d in v] for k, v in limits.items()} if isinstance(limits, dict) else {}


def _source(scenario: Scenario, name: str) -> str:
    """What gave input `name` its shape, as the user would name it."""
    if scenario.inputs_path:
        return f"from --inputs {scenario.inputs_path}"
    return f"from --shape {name}" if name in scenario.shapes else "its declared dims"


def check_maxima(info: Any, rows: list, limits: dict[str, list[int]], scenario: Scenario) -> None:
    """ConfigError when a request would carry an input larger than the model allows: more rows than
    max_batch_size, or a dim above its `max_input_dims` bound."""
    for name, shapes in sent_shapes(rows).items():
        source = _source(scenario, name)
        for shape in shapes:
            batch, dims = (shape[0], shape[1:]) if info.batched else (1, shape)
            if info.batched and batch > info.max_batch_size:
                raise ConfigError(
                    f"requests of {batch} rows ({source}) exceed max_batch_size {info.max_batch_size} of "
                    f"{_where(scenario)}; send at most {info.max_batch_size} rows per request"
                )
            maxima = limits.get(name)
            if maxima and len(maxima) == len(dims) and any(d > m for d, m in zip(dims, maxima, strict=True)):
                raise ConfigError(
                    f"input {name!r} would be sent with dims {tuple(dims)} ({source}); {_where(scenario)} "
                    f"accepts at most {tuple(maxima)} (max_input_dims in its config): choose -1 dims "
                    "within those"
                )


def _check_http(scenario: Scenario, info: Any, row: dict, url: str, timeout_s: float, *, own: bool) -> None:
    """Before any load over HTTP: the body fits what Triton 2.51's HTTP endpoint survives, and (unless
    `own`: the server this command started, whose HTTP endpoint it opened) one real inference of the
    first prepared row goes through the HTTP endpoint and shows in the statistics of the server at
    `url` (a wrong address, a server without HTTP or another server is one line). A request the model
    refuses (INVALID_ARGUMENT: its values) proves the endpoint; the load then counts those refusals."""
    from tritonstack.loadtest.http_wire import http_request
    from tritonstack.serve.limits import HTTP_SAFE_BODY_BYTES

    request, address = http_request(info, scenario.model, scenario.version, row), scenario.http_url
    if len(request.body) > HTTP_SAFE_BODY_BYTES:
        raise ConfigError(
            f"{_where(scenario)}: each request is {len(request.body) / 2**20:.0f} MiB, over the "
            f"{HTTP_SAFE_BODY_BYTES >> 20} MiB that Triton 2.51's HTTP endpoint takes without crashing "
            "(README, Security); send this load over gRPC (drop --protocol http)"
        )
    if own:
        return
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    try:
        before = _successes(client, scenario.model, timeout_s)
        if not _post_once(scenario, request, timeout_s):
            return
        deadline = time.monotonic() + 2.0  # the statistics are updated as the answer leaves
        while _successes(client, scenario.model, timeout_s) <= before:
            if time.monotonic() > deadline:
                raise ConfigError(f"--http-url {address} is not the server at {url}: a request sent there "
                                  f"did not show in that server's statistics of {_where(scenario)}; pass the "
                                  "HTTP endpoint of the same server")
            time.sleep(0.05)
    finally:
        client.close()


def _successes(client: Any, model: str, timeout_s: float) -> int:
    """Successful inferences of `model` (all versions) counted by the server `client` talks to."""
    stats = client.get_inference_statistics(model, as_json=True, client_timeout=timeout_s)
    return sum(int(m.get("inference_stats", {}).get("success", {}).get("count", 0))
               for m in stats.get("model_stats", []))


def _post_once(scenario: Scenario, request: Any, timeout_s: float) -> bool:
    """POST `request` to the scenario's HTTP endpoint: True when answered 200, False when the model
    refused its input (400); ConfigError (one line) otherwise."""
    import http.client
    import urllib.error
    import urllib.request

    from tritonstack.loadtest.http_wire import http_error
    from tritonstack.serve.control import split_host_port

    address = scenario.http_url
    host, port = split_host_port(address)
    base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    sent = urllib.request.Request(base + request.path, data=request.body, headers=request.headers,
                                  method="POST")
    try:
        wait_s = min(timeout_s, max(scenario.timeout_s, 1.0))  # a silent endpoint: the load's own deadline
        with urllib.request.urlopen(sent, timeout=wait_s) as answer:  # noqa: S310 - http:// built above
            answer.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 400:
            return False
        line = _first_line(http_error(exc.code, exc.read(), model=scenario.model))
        raise ConfigError(f"--http-url {address}: the server there refused a request to {_where(scenario)} "
                          f"({line}); pass the HTTP endpoint of the server at --url") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        reason = ("it does not answer in HTTP/1.1: a gRPC port?" if isinstance(exc, http.client.HTTPException)
                  else getattr(exc, "reason", None) or exc)
        busy = " (or the server there is busy: try again when its queue has drained)" if isinstance(
            exc, TimeoutError) or "timed out" in str(reason) else ""
        raise ConfigError(f"--http-url {address}: no HTTP endpoint answers there ({reason}){busy}; start "
                          "the server with its HTTP endpoint on (tritonstack serve --http) and pass its "
                          "host:port") from None
    return True


def preflight(
    scenario: Scenario, url: str, *, timeout_s: float = 10.0, count: int = 64, shown: str = "",
    own_server: bool = False,
) -> tuple[Any, list]:
    """The model's info and the requests the scenario will cycle through; raise before any load.

    Unknown model or version: ConfigError. Server unreachable or model not ready: the client's
    typed error (one line). Inputs that do not fit: ConfigError from `inputs`. `shown` names the
    server in messages instead of `url` (e.g. "the server started on model_repository": a temporary
    server's port means nothing to the user). `own_server`: that server was started by the caller, with
    the scenario's HTTP endpoint (if any): it need not be proven to be the same server.
    """
    shown = shown or url
    try:
        info = _model_info(scenario, url, timeout_s, shown)
    except ClientError as exc:
        line = name_server(_first_line(exc), url, shown)
        raise type(exc)(in_context(line, _where(scenario), scenario.model, shown)) from exc
    rows = request_rows(info, count=count, shapes=scenario.shapes, samples_path=scenario.inputs_path)
    check_maxima(info, rows, max_input_dims(_config_json(scenario, url, timeout_s)), scenario)
    if scenario.http_url:
        _check_http(scenario, info, rows[0], url, timeout_s, own=own_server)
    _LOGGER.debug("preflight ok: %s, %d prepared requests", _where(scenario), len(rows))
    return info, rows
