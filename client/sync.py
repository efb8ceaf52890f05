"""Blocking gRPC client for Triton with validation, deadlines, retries and typed errors.

    from tritonstack.client import TritonClient

    with TritonClient("127.0.0.1:8001") as client:
        client.wait_until_ready(timeout_s=30)
        probabilities = client.infer("digits_mlp", batch)["probabilities"]
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import numpy as np
from tritonstack.client.core import ClientCore, ClientOptions, Inputs
from tritonstack.client.errors import translate_errors
from tritonstack.client.model import ModelInfo

from tritonstack.errors import ClientError, ModelNotReadyError, ServerUnavailableError

__all__ = ["TritonClient"]


class TritonClient:
    """One gRPC connection to one Triton server. Thread-safe for concurrent `infer` calls."""

    def __init__(self, url: str, options: ClientOptions | None = None) -> None:
        import tritonclient.grpc as grpcclient

        self._grpc = grpcclient
        self._core = ClientCore(url, options)
        self._raw = grpcclient.InferenceServerClient(
            url, ssl=self._core.options.ssl, root_certificates=self._core.options.root_certificates
        )

    @property
    def url(self) -> str:
        """host:port this client talks to."""
        return self._core.url

    def close(self) -> None:
        """Close the channel; later calls raise ClientClosedError."""
        if not self._core._closed:
            self._core._closed = True
            self._raw.close()

    def __enter__(self) -> TritonClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def is_ready(self, model: str | None = None) -> bool:
        """True when the server (or the model) answers ready; False when it cannot be reached."""
        self._core.check_open()
        try:
            with translate_errors(model=model):
                if model is None:
                    return bool(self._raw.is_server_ready(client_timeout=1.0))
                return bool(self._raw.is_model_ready(model, client_timeout=1.0))
        except ClientError:
            return False

    def wait_until_ready(self, timeout_s: float = 30.0, *, model: str | None = None) -> None:
        """Block until the server (or model) is ready; raise ServerUnavailableError after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while not self.is_ready(model):
            if time.monotonic() >= deadline:
                what = f"model {model!r} on {self.url}" if model else f"server {self.url}"
                error = ModelNotReadyError if model else ServerUnavailableError
                raise error(f"{what} not ready after {timeout_s:g} s; is `tritonstack serve` running?")
            time.sleep(0.1)

    def model_info(self, model: str, version: str = "") -> ModelInfo:
        """The model's config, fetched once per (model, version) and cached."""
        self._core.check_open()
        key = (model, version)
        if key not in self._core._models:
            with translate_errors(model=model):
                config = self._raw.get_model_config(
                    model, version, as_json=True, client_timeout=self._core.options.timeout_s,
                    headers=self._core.headers(),
                )
            self._core._models[key] = ModelInfo.from_config(config["config"])
        return self._core._models[key]

    def infer(
        self,
        model: str,
        inputs: Inputs,
        *,
        outputs: Sequence[str] | None = None,
        version: int | str | None = None,
        timeout_s: float | None = None,
        request_id: str = "",
        headers: dict[str, str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Validate, send and decode one inference; retry only retryable errors, within the deadline."""
        info = self.model_info(model, str(version or ""))
        arrays = self._core.prepare(info, inputs)
        names = list(outputs or info.outputs)
        timeout = timeout_s or self._core.options.timeout_s
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._infer_once(info, arrays, names, version, deadline, request_id, headers)
            except ClientError as error:
                pause = self._core.options.retry.backoff_s(attempt)
                if not self._core.options.retry.should_retry(error, attempt) or (
                        time.monotonic() + pause >= deadline):
                    raise
                time.sleep(pause)

    def _infer_once(self, info: ModelInfo, arrays: dict[str, np.ndarray], names: list[str],
                    version: Any, deadline: float, request_id: str,
                    headers: dict[str, str] | None) -> dict[str, np.ndarray]:
        self._core.check_open()
        remaining = max(deadline - time.monotonic(), 0.001)
        with translate_errors(model=info.name):
            result = self._raw.infer(
                info.name, self._core.infer_inputs(self._grpc, info, arrays),
                model_version=str(version or ""),
                outputs=self._core.requested_outputs(self._grpc, info, names),
                request_id=request_id, client_timeout=remaining, headers=self._core.headers(headers),
            )
        return self._core.decode(result, names)
