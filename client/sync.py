"""Blocking gRPC client for Triton with validation, deadlines, retries and typed errors.

    from tritonstack.client import TritonClient

    with TritonClient("127.0.0.1:8001") as client:
        client.wait_until_ready(timeout_s=30)
        probabilities = client.infer("digits_mlp", batch)["probabilities"]
        everything = client.predict_many("digits_mlp", big_array, in_flight=4)["probabilities"]
"""

from __future__ import annotations

import contextlib
import logging
import time
import weakref
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import numpy as np
from tritonstack.client import bulk
from tritonstack.client.core import Call, ClientCore, ClientOptions, Inputs, model_infer, version_string
from tritonstack.client.errors import translate_errors
from tritonstack.client.model import ModelInfo
from tritonstack.client.retry import checked_seconds
from tritonstack.client.shm import (
    ShmPool,
    ShmTensors,
    UnregisterRetry,
    lost_registration,
    remove_stale_files,
    stale_regions,
)

from tritonstack.errors import ClientError, ModelNotReadyError

__all__ = ["TritonClient"]

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")


class TritonClient:
    """One gRPC connection to one Triton server. Thread-safe for concurrent calls.

    Every call has a deadline (`timeout_s`, default from `ClientOptions`); inference is retried on
    retryable errors (UNAVAILABLE, overload) with backoff inside that deadline. Use after
    `close()` raises ClientClosedError.
    """

    def __init__(self, url: str, options: ClientOptions | None = None) -> None:
        import grpc
        import tritonclient.grpc as grpcclient

        self._grpc = grpcclient
        self._rpc_error = grpc.RpcError
        self._core = ClientCore(url, options)
        self._raw = grpcclient.InferenceServerClient(
            url, ssl=self._core.options.ssl, root_certificates=self._core.options.root_certificates,
            channel_args=self._core.channel_args(),
        )
        self._model_infer = model_infer(self._raw._channel)  # noqa: SLF001 - tritonclient's channel
        #: predict_iter(shared_memory=True) iterations not finished: close() closes them (their threads
        #: end, then their regions are released)
        self._iterations: weakref.WeakSet[bulk.Iteration] = weakref.WeakSet()

    @property
    def url(self) -> str:
        """host:port this client talks to."""
        return self._core.url

    @property
    def options(self) -> ClientOptions:
        """The options this client was made with."""
        return self._core.options

    def close(self) -> None:
        """Close the channel; later calls raise ClientClosedError. Closing twice is harmless."""
        for iteration in list(self._iterations):
            with contextlib.suppress(ValueError):  # being iterated in another thread: it releases its own
                iteration.cut()
        if self._core.mark_closed():
            self._raw.close()

    def __enter__(self) -> TritonClient:
        self._core.check_open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- readiness and discovery ------------------------------------------------------------------
    def is_ready(self, model: str | None = None) -> bool:
        """True when the server (or the model) answers ready; False when it cannot be reached."""
        self._core.check_open()
        timeout = self._core.options.probe_timeout_s
        try:
            with translate_errors(model=model):
                if model is None:
                    return bool(self._raw.is_server_ready(headers=self._core.headers(),
                                                          client_timeout=timeout))
                return bool(self._raw.is_model_ready(model, headers=self._core.headers(),
                                                     client_timeout=timeout))
        except ClientError:
            return False

    def wait_until_ready(self, timeout_s: float = 30.0, *, model: str | None = None) -> None:
        """Block until the server (or model) is ready; raise ServerUnavailableError
        (ModelNotReadyError for a model) after timeout_s."""
        deadline = time.monotonic() + checked_seconds("timeout_s", timeout_s)
        while not self.is_ready(model):
            if time.monotonic() >= deadline:
                raise self._core.not_ready_error(model, timeout_s)
            time.sleep(0.1)

    def model_info(self, model: str, version: int | str | None = None, *,
                   timeout_s: float | None = None) -> ModelInfo:
        """The model's config, fetched once per (model, version) and cached; the fetch is
        retried like inference (it only reads)."""
        return self._model_info(model, version_string(version), self._core.deadline(timeout_s))

    def _model_info(self, model: str, key: str, deadline: float) -> ModelInfo:
        info = self._core.cached(model, key)
        if info is None:
            found = self._with_retries(model, deadline, lambda: self._fetch_model(model, key, deadline))
            info = self._core.remember(model, key, found)
        return info

    def _fetch_model(self, model: str, key: str, deadline: float) -> tuple[Any, Any]:
        self._core.check_open()
        headers = self._core.headers()
        with translate_errors(model=model):
            config = self._raw.get_model_config(model, key, as_json=True, headers=headers,
                                                client_timeout=max(deadline - time.monotonic(), 0.001))
            metadata = self._raw.get_model_metadata(model, key, as_json=True, headers=headers,
                                                    client_timeout=max(deadline - time.monotonic(), 0.001))
        return config, metadata

    # -- inference --------------------------------------------------------------------------------
    def infer(self, model: str, inputs: Inputs, *, outputs: Sequence[str] | None = None,
              version: int | str | None = None, timeout_s: float | None = None,
              request_id: str = "", headers: Mapping[str, str] | None = None) -> dict[str, np.ndarray]:
        """Validate, send and decode one inference; retry only retryable errors, within the deadline.

        `inputs` is a dict of arrays by input name, or one array for a single-input model; the
        result is a dict of arrays by output name (all outputs unless `outputs` is given).
        """
        call = self._call(model, inputs, outputs, version, timeout_s, request_id, headers)
        try:  # the first attempt inline: the common case costs no retry machinery
            return self._send(call)
        except ClientError as error:
            failed = error
        return self._with_retries(model, call.deadline, lambda: self._send(call), failed=failed)

    def infer_shm(self, model: str, inputs: Inputs, *, outputs: Sequence[str] | None = None,
                  version: int | str | None = None, timeout_s: float | None = None,
                  headers: Mapping[str, str] | None = None) -> dict[str, np.ndarray]:
        """Like `infer`, but tensors travel through system shared memory (for large tensors).

        Regions are registered with the client's headers and always unregistered and unlinked,
        whether the call succeeds or fails. Needs the server's admin header when its
        shared-memory endpoint is restricted.
        """
        call = self._call(model, inputs, outputs, version, timeout_s, "", headers)
        return self._with_retries(model, call.deadline, lambda: self._send_shm(call))

    def predict_many(self, model: str, data: bulk.Data, *, batch_size: int | None = None,
                     in_flight: int = 4, outputs: Sequence[str] | None = None,
                     version: int | str | None = None, timeout_s: float | None = None,
                     progress: bool | Callable[[int], None] = False,
                     shared_memory: bool = False) -> dict[str, np.ndarray]:
        """Run inference over all rows of `data`; outputs concatenated in input order (each with 0
        rows, the model's dtype and dims when `data` has none). Arguments as in `predict_iter`."""
        empty = bulk.no_rows(self.model_info(model, version, timeout_s=timeout_s), outputs)
        return bulk.concatenate(self.predict_iter(
            model, data, batch_size=batch_size, in_flight=in_flight, outputs=outputs, version=version,
            timeout_s=timeout_s, progress=progress, shared_memory=shared_memory), empty)

    def predict_iter(self, model: str, data: bulk.Data, *, batch_size: int | None = None,
                     in_flight: int = 4, outputs: Sequence[str] | None = None,
                     version: int | str | None = None, timeout_s: float | None = None,
                     progress: bool | Callable[[int], None] = False,
                     shared_memory: bool = False) -> Iterator[dict[str, np.ndarray]]:
        """Yield one result dict per chunk, in input order, with at most `in_flight` chunks sent.

        `data` is an array (or dict of arrays) with the batch axis first, or an iterable of
        single rows (arrays or dicts without the batch axis); chunks hold up to `batch_size` rows
        (default: the model's max_batch_size). Memory stays bounded by `in_flight` chunks.
        `shared_memory`: the tensors travel through `in_flight` system shared-memory slots registered
        once for the whole call (server on this host, fixed-size tensors; needs the admin header when
        the server restricts its shared-memory endpoint, see `infer_shm`); unregistered and unlinked
        at the end, also when a chunk failed or the iteration stopped early.
        """
        info = self.model_info(model, version, timeout_s=timeout_s)
        plan = bulk.Plan.make(info, data, batch_size=batch_size, in_flight=in_flight, progress=progress)
        if shared_memory:
            pool = ShmPool(plan.batch_rows)
            iteration = bulk.Iteration(self._predict_shm(model, plan, outputs, version, timeout_s, pool))
            pool.at_exit = iteration.close  # left unfinished until the interpreter exits
            self._iterations.add(iteration)
            return iteration

        def send(chunk: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            return self.infer(model, chunk, outputs=outputs, version=version, timeout_s=timeout_s)

        return bulk.run_threaded(plan, send)

    def _predict_shm(self, model: str, plan: bulk.Plan, outputs: Sequence[str] | None,
                     version: int | str | None, timeout_s: float | None,
                     pool: ShmPool) -> Generator[dict[str, np.ndarray], None, None]:

        def send(chunk: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            call = self._call(model, chunk, outputs, version, timeout_s, "", None)
            return self._with_retries(model, call.deadline, lambda: self._send_pooled(call, pool))

        self._remove_stale_regions()
        try:
            yield from bulk.run_threaded(plan, send)  # its finally: no chunk left in flight
        finally:
            try:
                if not self._core.closed:
                    for slot in pool.slots:
                        self._release(slot)
            finally:
                pool.close()

    # -- internals --------------------------------------------------------------------------------
    def _call(self, model: str, inputs: Inputs, outputs: Sequence[str] | None, version: int | str | None,
              timeout_s: float | None, request_id: str, headers: Mapping[str, str] | None) -> Call:
        deadline, key = self._core.deadline(timeout_s), version_string(version)
        info = self._core.cached(model, key) or self._model_info(model, key, deadline)
        return self._core.new_call(info, inputs, deadline=deadline, outputs=outputs, version=version,
                                   request_id=request_id, headers=headers)

    def _with_retries(self, model: str, deadline: float, attempt_once: Callable[[], _T], *,
                      failed: ClientError | None = None) -> _T:
        """Call `attempt_once` until it succeeds or the retry policy gives up (re-raising the last
        error); `failed` is the error of an attempt already made."""
        attempt, error = (0, None) if failed is None else (1, failed)
        while True:
            if error is not None:
                pause = self._core.options.retry.pause_s(error, attempt, deadline)
                if pause is None:
                    raise error
                _LOGGER.debug("attempt %d for %r failed (%s); retrying in %.3f s",
                              attempt, model, error, pause)
                time.sleep(pause)
            attempt += 1
            try:
                return attempt_once()
            except ClientError as exc:
                error = exc

    def _send(self, call: Call) -> dict[str, np.ndarray]:
        """One ModelInfer of `call` (the bytes of `ClientCore.encode`), decoded; errors typed."""
        try:
            response = self._model_infer(self._core.encode(call), metadata=self._core.metadata(call),
                                          timeout=call.remaining_s())
        except self._rpc_error as exc:
            error = self._core.rpc_error(exc, call)
            if isinstance(error, ModelNotReadyError):
                error = self._core.refine_not_ready(error, self.is_ready())
            raise error from exc
        return self._core.decode(response, call.outputs)

    def _send_shm(self, call: Call) -> dict[str, np.ndarray]:
        with ShmTensors(call) as shm:
            try:
                return self._infer_in(shm, call)
            finally:
                self._release(shm)

    def _send_pooled(self, call: Call, pool: ShmPool) -> dict[str, np.ndarray]:
        slot = pool.take(call)
        try:
            return self._infer_in(slot, call)
        finally:
            pool.give_back(slot)

    def _infer_in(self, shm: ShmTensors, call: Call) -> dict[str, np.ndarray]:
        """`call` through the regions of `shm` (loaded with its inputs), registering those not yet."""
        for region in shm.regions:
            if region.name not in shm.registered:
                with translate_errors(model=call.info.name):
                    self._raw.register_system_shared_memory(
                        region.name, region.key, region.byte_size, headers=call.headers,
                        client_timeout=call.remaining_s())
                shm.registered.append(region.name)
        kwargs = self._core.infer_kwargs(self._grpc, call, tensors=shm.tensors(self._grpc))
        try:
            with translate_errors(model=call.info.name):
                result = self._raw.infer(**kwargs)
        except ClientError as error:
            lost = lost_registration(error, shm)
            if lost is error:
                raise
            raise lost from error
        return shm.read_outputs(result)

    def _remove_stale_regions(self) -> None:
        """Unregister (and unlink) the regions of clients killed before they released theirs (SIGKILL,
        SIGTERM): without this they stay registered until the server restarts. Best effort: a server
        that refuses the status call (no admin header) refuses the registrations just after, anyway."""
        headers = dict(self._core.options.headers) or None
        try:
            with translate_errors():
                status = self._raw.get_system_shared_memory_status(
                    headers=headers, as_json=True, client_timeout=self._core.options.probe_timeout_s)
        except ClientError:
            return
        for name in stale_regions(status):
            self._unregister(name, headers)
        remove_stale_files()

    def _release(self, shm: ShmTensors) -> None:
        """Unregister the regions of `shm` the server has."""
        for name in shm.registered:
            self._unregister(name, shm.call.headers)
        shm.registered.clear()

    def _unregister(self, name: str, headers: dict[str, str] | None) -> None:
        retry = UnregisterRetry(name)
        while retry.again(self._unregister_once(name, headers)):
            time.sleep(retry.pause)

    def _unregister_once(self, name: str, headers: dict[str, str] | None) -> ClientError | None:
        try:
            with translate_errors():
                self._raw.unregister_system_shared_memory(
                    name, headers=headers, client_timeout=self._core.options.timeout_s)
        except ClientError as error:
            return error
        return None
