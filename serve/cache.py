"""Triton's local response cache for the embedded server.

    args = cache_arguments(Path("model_repository"), ["digits_mlp"], size_mb=None)
    # ["--cache-directory=.../pytriton/tritonserver/caches", "--cache-config=local,size=67108864"]

A model's `response_cache { enable: true }` does nothing unless the server itself runs a cache:
the wheel ships `caches/local/libtritoncache_local.so`, loaded with `--cache-directory` and sized
by `--cache-config=local,size=<bytes>`. Without a size given, a cache of DEFAULT_SIZE_MB runs when
any served model enables it, and none otherwise; size 0 turns it off.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from tritonstack.serve.binary import find_install

from tritonstack.errors import ConfigError
from tritonstack.model_config import read_config

__all__ = ["DEFAULT_SIZE_MB", "cache_arguments", "models_with_cache"]

_LOGGER = logging.getLogger(__name__)
DEFAULT_SIZE_MB = 64


def models_with_cache(repository: Path, models: Iterable[str]) -> list[str]:
    """The models whose config.pbtxt enables the response cache."""
    enabled = []
    for name in models:
        try:
            if read_config(repository / name / "config.pbtxt").response_cache.enable:
                enabled.append(name)
        except ConfigError:
            continue  # a broken config is reported by the plan, not here
    return enabled


def cache_arguments(repository: Path, models: Iterable[str], size_mb: int | None) -> list[str]:
    """tritonserver arguments that run the local cache, or [] when none is wanted."""
    enabled = models_with_cache(repository, models)
    size = DEFAULT_SIZE_MB if size_mb is None and enabled else (size_mb or 0)
    if size <= 0:
        if enabled:
            _LOGGER.warning("response cache off (size 0): %s enable it, every request executes", enabled)
        return []
    directory = find_install().root / "caches"
    if not (directory / "local" / "libtritoncache_local.so").is_file():
        raise ConfigError(f"the response cache library is missing from {directory}; "
                          "reinstall nvidia-pytriton or pass --cache-size-mb 0")
    return [f"--cache-directory={directory}", f"--cache-config=local,size={size * 1024 * 1024}"]
