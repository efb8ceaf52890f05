"""What the sync and asyncio clients share: options, request building, result decoding, retries.

    options = ClientOptions(timeout_s=5.0, retry=RetryPolicy(attempts=4))

The transports (`sync.TritonClient`, `aio.AsyncTritonClient`) only do I/O; every decision that
does not wait on the network lives here, once.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tritonstack.client.errors import RETRYABLE
from tritonstack.client.model import ModelInfo
from tritonstack.client.validation import Bounds, Rule, validate_inputs

from tritonstack.errors import ClientClosedError, ConfigError, InvalidInputError

__all__ = ["ClientCore", "ClientOptions", "Inputs", "RetryPolicy"]

Inputs = Mapping[str, np.ndarray] | np.ndarray


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with full jitter, for retryable errors of idempotent inference only."""

    attempts: int = 4
    initial_backoff_s: float = 0.05
    max_backoff_s: float = 2.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.initial_backoff_s < 0 or self.multiplier < 1:
            raise ConfigError(f"invalid retry policy {self}; attempts >= 1, backoff >= 0, multiplier >= 1")

    def backoff_s(self, attempt: int) -> float:
        """Seconds to sleep after failed attempt number `attempt` (1-based)."""
        cap = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (attempt - 1))
        return random.uniform(0, cap)  # noqa: S311 - jitter, not cryptography

    def should_retry(self, error: Exception, attempt: int) -> bool:
        """True when `error` is retryable and attempts remain."""
        return isinstance(error, RETRYABLE) and attempt < self.attempts


@dataclass(frozen=True, kw_only=True)
class ClientOptions:
    """Per-client defaults: deadline per call, retry policy, validation, TLS, admin headers."""

    timeout_s: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    validate: bool = True
    bounds: Mapping[str, Mapping[str, Bounds]] = field(default_factory=dict)  # model -> input -> bounds
    rules: Mapping[str, Sequence[Rule]] = field(default_factory=dict)  # model -> rules
    ssl: bool = False
    root_certificates: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ConfigError(f"timeout_s={self.timeout_s} must be > 0")


class ClientCore:
    """State and pure logic shared by both clients: model cache, validation, encoding."""

    def __init__(self, url: str, options: ClientOptions | None) -> None:
        self.url = url
        self.options = options or ClientOptions()
        self._models: dict[tuple[str, str], ModelInfo] = {}
        self._closed = False

    def check_open(self) -> None:
        """Raise ClientClosedError after close()."""
        if self._closed:
            raise ClientClosedError(f"client for {self.url} is closed; create a new one")

    def as_dict(self, info: ModelInfo, inputs: Inputs) -> dict[str, np.ndarray]:
        """Accept one array for single-input models, else a dict by input name."""
        if isinstance(inputs, np.ndarray):
            if len(info.inputs) != 1:
                raise InvalidInputError(f"model {info.name!r} has inputs {sorted(info.inputs)}; "
                                        "pass a dict of arrays by input name")
            return {next(iter(info.inputs)): inputs}
        return dict(inputs)

    def prepare(self, info: ModelInfo, inputs: Inputs) -> dict[str, np.ndarray]:
        """Normalise and validate inputs for `info`."""
        arrays = self.as_dict(info, inputs)
        if self.options.validate:
            validate_inputs(info, arrays, bounds=self.options.bounds.get(info.name),
                            rules=self.options.rules.get(info.name, ()))
        return arrays

    def infer_inputs(self, module: Any, info: ModelInfo, arrays: Mapping[str, np.ndarray]) -> list:
        """tritonclient InferInput objects (`module` is tritonclient.grpc or its aio twin)."""
        items = []
        for name, array in arrays.items():
            item = module.InferInput(name, list(array.shape), info.inputs[name].datatype)
            item.set_data_from_numpy(array)
            items.append(item)
        return items

    def requested_outputs(self, module: Any, info: ModelInfo, outputs: Sequence[str] | None) -> list:
        """InferRequestedOutput objects for the wanted outputs (all by default)."""
        return [module.InferRequestedOutput(name) for name in (outputs or info.outputs)]

    @staticmethod
    def decode(result: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
        """numpy arrays by output name from an InferResult."""
        return {name: result.as_numpy(name) for name in names}

    def headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str] | None:
        """Headers for a call: the client's, then the call's."""
        merged = {**self.options.headers, **(extra or {})}
        return merged or None
