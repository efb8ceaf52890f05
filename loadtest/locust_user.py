"""Locust users that talk to Triton through tritonstack's gRPC client.

    from tritonstack.loadtest.locust_user import TritonGrpcUser

    class MyUser(TritonGrpcUser):
        model = "digits_mlp"
        @task
        def predict(self):
            self.infer()

The users `user_class` builds for a scenario send prepared requests (`prepared = True`): each row is
encoded once into ModelInferRequest bytes and sent on a plain gRPC channel without decoding the reply,
as perf_analyzer and the asyncio engine's `triton_raw` do, so the load generator spends its core on
gRPC alone (under gevent, ~25% more requests per CPU second than through `TritonClient.infer`);
failures still get our typed errors. With the scenario's `http_url` they go to the same server's HTTP
endpoint instead (`tritonstack.loadtest.http_wire`: ~2.5x less generator CPU per request than gRPC
under gevent); the model's config is still read over gRPC. `infer(inputs)` with inputs of your own
always goes through `TritonClient` (validation, decoded outputs).

Importing this module makes gRPC gevent-compatible (`grpc.experimental.gevent.init_gevent()`)
before any channel exists, and imports Locust (which monkey-patches with gevent): import it only in
load-test processes, never from library code. Every call is reported through Locust's
`events.request`, failures included, with `context` carrying the scheduled and actual send time.
"""

from __future__ import annotations

import itertools
import time
import weakref
from typing import Any

import grpc
from grpc.experimental import gevent as grpc_gevent

grpc_gevent.init_gevent()

import gevent  # noqa: E402 - after init_gevent on purpose
import numpy as np  # noqa: E402
from gevent.pool import Pool  # noqa: E402
from locust import User, constant, task  # noqa: E402
from tritonstack.loadtest.generator import error_kind  # noqa: E402
from tritonstack.loadtest.inputs import request_rows  # noqa: E402
from tritonstack.loadtest.scenario import STOP_WAIT_S, Scenario  # noqa: E402
from tritonstack.loadtest.schedule import Arrival  # noqa: E402
from tritonstack.loadtest.stats import late_answer  # noqa: E402

__all__ = ["OpenLoopUser", "SteadyUser", "TritonGrpcUser", "close_clients", "user_class"]


_OPEN_CLIENTS: weakref.WeakSet[Any] = weakref.WeakSet()


def close_clients() -> None:
    """Close the channels of users that were killed without on_stop.

    Call it while the gevent hub still runs (after `runner.quit()`): a channel left for the
    interpreter's exit blocks in grpc's close() under gevent, and the process never ends.
    """
    for client in list(_OPEN_CLIENTS):
        client.close()
    _OPEN_CLIENTS.clear()


def _sleep_until(instant_s: float, spin_s: float = 0.002) -> None:
    """Sleep to `instant_s` (perf_counter), yielding to other greenlets for the last `spin_s`:
    the event loop's timers are ~1 ms coarse, and a late send would count against the server."""
    while (delay := instant_s - time.perf_counter()) > 0:
        gevent.sleep(delay - spin_s if delay > spin_s else 0)


class TritonGrpcUser(User):
    """Abstract: one TritonClient per user (no retries: a failure is a data point, not hidden).

    `timeout_s` is the deadline of each inference (the model config is fetched with the default).
    `version` ("" = the server's choice), `shapes` (dims for -1 axes) and `inputs_path` (an .npz of
    real samples) shape what is sent; see `tritonstack.loadtest.inputs`.
    """

    abstract = True
    model: str = "digits_mlp"
    version: str = ""
    timeout_s: float = 10.0
    shapes: dict[str, tuple[int, ...]] = {}  # noqa: RUF012 - read-only class default
    inputs_path: str = ""
    prepared: bool = False  # True: `infer()` without inputs sends prepared request bytes, returns None
    http_url: str = ""  # with `prepared`: send them to this HTTP endpoint (host:port) instead of gRPC
    wait_time = constant(0)

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        from tritonstack.client import ClientOptions, RetryPolicy, TritonClient

        self.client = TritonClient(self.host, ClientOptions(retry=RetryPolicy(attempts=1)))
        _OPEN_CLIENTS.add(self.client)
        self.rows: list[dict[str, np.ndarray]] = []
        self._next = 0
        self._wire: list[Any] = []
        self._channel: Any = None
        self._send_wire: Any = None

    def on_start(self) -> None:
        """Fetch the model config and take the requests that fit it (random, or the samples): prepared
        once per process and shared by its users, each starting at its own place in them."""
        info = self._model_info()
        self.rows, self._wire = _prepared(self, info)
        self._next = next(_STARTED)  # users take the shared requests from different places
        if self.prepared and self.http_url:
            from tritonstack.loadtest.http_wire import HttpSender

            self._channel = HttpSender(self.http_url, model=self.model, timeout_s=self.timeout_s,
                                       connections=getattr(self, "max_in_flight", 1))  # open loop: its pool
            _OPEN_CLIENTS.add(self._channel)
            self._send_wire = self._channel.send
        elif self.prepared:
            self._channel, self._send_wire = _wire_call(self.host)

    def _model_info(self) -> Any:
        """The model's config. While the server does not give it (down, restarting or hung as the users
        start), each attempt (deadline --timeout-s) counts as a failed request, as the request would
        have, and is tried again: a user that raised here would leave the run silently (Locust drops
        it), and a run whose server hung at its start would report no failure at all."""
        from tritonstack.errors import ClientError

        while True:
            start = time.perf_counter()
            try:
                return self.client.model_info(self.model, self.version or None, timeout_s=self.timeout_s)
            except ClientError as exc:
                self._report(start, start, time.perf_counter(), exc, "grpc")
                gevent.sleep(0.05)

    def _report(self, scheduled: float, start: float, end: float, exception: BaseException | None,
                kind: str) -> None:
        """One request to Locust's statistics (and our listeners); latency from `scheduled`."""
        self.environment.events.request.fire(
            request_type=kind,
            name=self.model,
            response_time=(end - scheduled) * 1e3,
            response_length=0,
            exception=exception,
            context={
                "scheduled_s": scheduled,
                "start_s": start,
                "end_s": end,
                "error": error_kind(exception) if exception else "",
            },
        )

    def _infer_prepared(self) -> None:
        """Send the next prepared request; a failure raises our typed error (the reply is not decoded)."""
        wire, self._next = self._wire[self._next % len(self._wire)], self._next + 1
        if self.http_url:
            self._send_wire(wire)  # raises our typed errors itself
            return
        try:
            self._send_wire(wire, timeout=self.timeout_s)
        except grpc.RpcError as exc:
            from tritonstack.client.errors import error_for_status

            raise error_for_status(exc.code().name, exc.details() or "", model=self.model) from exc

    def on_stop(self) -> None:
        """Close the channel."""
        for opened in (self.client, self._channel):
            if opened is not None:
                opened.close()
                _OPEN_CLIENTS.discard(opened)

    def infer(self, inputs: dict[str, np.ndarray] | None = None, *, scheduled_s: float | None = None) -> Any:
        """One inference, reported to Locust; latency counts from `scheduled_s` when given."""
        fast = inputs is None and bool(self._wire)
        if inputs is None and not fast:
            inputs, self._next = self.rows[self._next % len(self.rows)], self._next + 1
        start = time.perf_counter()
        scheduled = start if scheduled_s is None else scheduled_s
        result, exception = None, None
        try:
            if fast:
                self._infer_prepared()
            else:
                result = self.client.infer(
                    self.model, inputs, version=self.version or None, timeout_s=self.timeout_s
                )
        except Exception as exc:  # noqa: BLE001 - reported as a failed request
            exception = exc
        end = time.perf_counter()
        exception = exception or late_answer(end - scheduled, self.timeout_s, self.model)
        self._report(scheduled, start, end, exception, "http" if fast and self.http_url else "grpc")
        return result


class SteadyUser(TritonGrpcUser):
    """Closed loop: each user sends its next request when the previous one returns."""

    abstract = True

    @task
    def predict(self) -> None:
        """One request."""
        self.infer()


class OpenLoopUser(TritonGrpcUser):
    """Open loop: requests leave on a constant or Poisson schedule, whether or not others returned.

    `rate_rps` is this user's share of the total rate. When `max_in_flight` requests are
    outstanding the next one waits, and the wait counts in its latency (the schedule never moves).
    """

    abstract = True
    rate_rps: float = 100.0
    arrival: Arrival = Arrival.POISSON
    max_in_flight: int = 64

    @task
    def run_schedule(self) -> None:
        """Issue requests on schedule until the user is stopped."""
        from locust.user.users import LOCUST_STATE_STOPPING

        rng = np.random.default_rng(id(self) % 10_000)
        pool, due = Pool(self.max_in_flight), time.perf_counter()
        try:
            while self._state != LOCUST_STATE_STOPPING:  # a graceful stop (--workers: the run's end) ends
                _sleep_until(due)  # the schedule; the requests in flight are waited for below
                if self._state == LOCUST_STATE_STOPPING:
                    break
                pool.spawn(self.infer, scheduled_s=due)  # blocks while the pool is full
                due += self._gap(rng)  # the first request leaves at once, as in `arrival_offsets`
        finally:
            pool.join(timeout=min(self.timeout_s, STOP_WAIT_S))

    def _gap(self, rng: np.random.Generator) -> float:
        if Arrival(self.arrival) is Arrival.CONSTANT:
            return 1.0 / self.rate_rps
        return float(rng.exponential(1.0 / self.rate_rps))


def user_class(scenario: Scenario, host: str) -> type[TritonGrpcUser]:
    """A concrete user class for `scenario` (Locust needs classes, not instances)."""
    from tritonstack.loadtest.scenario import Kind

    base = OpenLoopUser if scenario.kind is Kind.OPEN else SteadyUser
    attributes = {
        "abstract": False,
        "host": host,
        "model": scenario.model,
        "version": scenario.version,
        "timeout_s": scenario.timeout_s,
        "shapes": dict(scenario.shapes),
        "inputs_path": scenario.inputs_path,
        "prepared": True,
        "http_url": scenario.http_url,
        "__module__": __name__,
    }
    if scenario.kind is Kind.OPEN:
        attributes.update(
            rate_rps=scenario.rate_rps / scenario.users,
            arrival=scenario.arrival,
            max_in_flight=scenario.max_in_flight,
        )
    return type(f"Triton{scenario.kind.value.title()}User", (base,), attributes)


_PREPARED: dict[tuple, tuple[list[dict[str, np.ndarray]], list[Any]]] = {}
_STARTED = itertools.count()


def _prepared(user: TritonGrpcUser, info: Any) -> tuple[list[dict[str, np.ndarray]], list[Any]]:
    """(rows, wire) for `user`'s kind of request, built once per process: up to 64 rows within
    `inputs.PREPARED_BUDGET_BYTES`; with `prepared`, only their encoded form is kept (no rows)."""
    key = (user.model, user.version, tuple(sorted(user.shapes.items())), user.inputs_path, user.prepared,
           user.http_url)
    if key not in _PREPARED:  # no greenlet switch from here to the store: users never build twice
        rows = request_rows(info, count=64, shapes=user.shapes, samples_path=user.inputs_path)
        if not user.prepared:
            _PREPARED[key] = (rows, [])
        elif user.http_url:
            from tritonstack.loadtest.http_wire import http_request

            _PREPARED[key] = ([], [http_request(info, user.model, user.version, row) for row in rows])
        else:
            _PREPARED[key] = ([], [_request_bytes(info, user.model, user.version, row) for row in rows])
    return _PREPARED[key]


def _request_bytes(info: Any, model: str, version: str, row: dict[str, np.ndarray]) -> bytes:
    """A serialized ModelInferRequest carrying `row` as raw tensor contents (built once, sent often)."""
    from tritonclient.grpc import service_pb2
    from tritonstack.client.core import raw_tensor_bytes

    request = service_pb2.ModelInferRequest(model_name=model, model_version=version)
    for name, array in row.items():
        datatype = info.inputs[name].datatype
        request.inputs.add(name=name, datatype=datatype, shape=list(array.shape))
        request.raw_input_contents.append(raw_tensor_bytes(array, datatype))
    return request.SerializeToString()


def _wire_call(host: str) -> tuple[Any, Any]:
    """A new plain channel to `host` and Triton's ModelInfer on it, bytes in and bytes out (no protobuf
    work per call); the caller keeps the channel and closes it."""
    import grpc
    from tritonstack.client.core import wire_channel_options

    channel = grpc.insecure_channel(host, options=wire_channel_options())
    _OPEN_CLIENTS.add(channel)  # closed with the users' clients
    return channel, channel.unary_unary("/inference.GRPCInferenceService/ModelInfer", _registered_method=True)
