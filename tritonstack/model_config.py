"""Read and write Triton `config.pbtxt` files through Triton's own ModelConfig protobuf.

    from tritonstack.model_config import read_config, write_config

    config = read_config(Path("model_repository/digits_mlp/config.pbtxt"))
    config.max_batch_size = 256
    write_config(config, Path("/tmp/config.pbtxt"))

`config.pbtxt` is the only contract between build time (convert/) and run time (serve/, client/),
so it is parsed and printed in exactly this one place, never by string templates.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tritonstack.errors import ConfigError

if TYPE_CHECKING:
    from tritonclient.grpc.model_config_pb2 import ModelConfig

__all__ = ["config_text", "new_config", "parse_config", "read_config", "write_config"]


def _pb():  # noqa: ANN202 - the generated module
    from tritonclient.grpc import model_config_pb2

    return model_config_pb2


def new_config() -> ModelConfig:
    """Return an empty ModelConfig message."""
    return _pb().ModelConfig()


def parse_config(text: str, *, source: str = "config.pbtxt") -> ModelConfig:
    """Parse protobuf text into a ModelConfig; raise ConfigError naming the source on failure."""
    from google.protobuf import text_format

    try:
        return text_format.Parse(text, _pb().ModelConfig())
    except text_format.ParseError as exc:
        raise ConfigError(f"{source}: not a valid Triton model config ({exc})") from exc


def read_config(path: Path) -> ModelConfig:
    """Read a `config.pbtxt` file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    return parse_config(text, source=str(path))


def config_text(config: ModelConfig) -> str:
    """Render a ModelConfig as `config.pbtxt` text."""
    from google.protobuf import text_format

    return text_format.MessageToString(config)


def write_config(config: ModelConfig, path: Path) -> None:
    """Write a ModelConfig to `path` as protobuf text."""
    Path(path).write_text(config_text(config), encoding="utf-8")
