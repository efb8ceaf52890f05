"""A new version of a model that exists already: same interface, and the operator's settings kept.

    check_same_interface(repository / "iris", spec)        # before anything is written
    carry_over(read_config(old_config), new_config, ("version_policy",))

Every version of a model is served with the one config.pbtxt, so a new version must take and give
the same tensors as the old ones (else they can no longer be promoted back), and the settings an
operator made since (`tritonstack versions promote/canary` set `version_policy`; tuning sets
`instance_group`, `dynamic_batching`, `response_cache`) stay unless this conversion was told otherwise.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from tritonstack.convert.spec import ModelSpec

from tritonstack.errors import RepositoryWriteError
from tritonstack.model_config import read_config

if TYPE_CHECKING:
    from tritonclient.grpc.model_config_pb2 import ModelConfig

__all__ = ["KEEPABLE", "carry_over", "check_same_interface", "interface_difference", "not_served_note"]

_LOGGER = logging.getLogger(__name__)

#: Fields of an existing config a new version may keep (the operator's, not the model's interface).
KEEPABLE = ("version_policy", "instance_group", "dynamic_batching", "response_cache")


def _tensors(items) -> list[str]:  # noqa: ANN001 - repeated ModelInput/ModelOutput
    """Each tensor as the --input spec that declares it: `name:DTYPE:dims`."""
    return [f"{t.name}:{_dtype(t.data_type)}:{','.join(map(str, t.dims))}" for t in items]


def _dtype(value: int) -> str:
    from tritonclient.grpc import model_config_pb2

    return model_config_pb2.DataType.Name(value).removeprefix("TYPE_")


def interface_difference(old: ModelConfig, new: ModelConfig) -> tuple[str, str] | None:
    """(what differs, the option that fixes it) between two configs' tensors and max_batch_size, or None."""
    if old.max_batch_size != new.max_batch_size:
        return (f"max_batch_size {old.max_batch_size}, this conversion {new.max_batch_size}",
                f"--max-batch-size {old.max_batch_size}")
    for kind, before, after in (("input", old.input, new.input), ("output", old.output, new.output)):
        was, now = _tensors(before), _tensors(after)
        if sorted(was) != sorted(now):
            fix = " ".join(f"--input {t}" for t in was) if kind == "input" else "the same outputs"
            return f"{kind}s {', '.join(was)}, this conversion {', '.join(now) or 'none'}", fix
    return None


def check_same_interface(model_dir: Path, spec: ModelSpec) -> None:
    """Refuse a new version of an existing model whose tensors or max_batch_size differ from its config."""
    config_path = Path(model_dir) / "config.pbtxt"
    if not config_path.is_file():
        return
    found = interface_difference(read_config(config_path), spec.to_config())
    if found is not None:
        difference, fix = found
        raise RepositoryWriteError(
            f"model {spec.name!r} exists with {difference} (its older versions could not be served with "
            f"a changed config.pbtxt); nothing was written: convert with {fix}, or pass a new --name")


def carry_over(old: ModelConfig, new: ModelConfig, fields: tuple[str, ...]) -> None:
    """Copy `fields` (from KEEPABLE) that the old config sets onto the new one, replacing the new ones'."""
    for name in fields:
        if name == "instance_group":
            if old.instance_group:
                del new.instance_group[:]
                new.instance_group.extend(old.instance_group)
        elif old.HasField(name):
            new.ClearField(name)
            getattr(new, name).CopyFrom(getattr(old, name))
        elif name == "dynamic_batching" and new.HasField(name):
            new.ClearField(name)  # the operator turned batching off
        _LOGGER.debug("kept %s of the existing config of %s", name, old.name)


def not_served_note(config: ModelConfig, version: int) -> str | None:
    """Why `version` is not served under `config`'s policy, with the command that serves it; or None."""
    policy = config.version_policy
    if policy.WhichOneof("policy_choice") != "specific" or version in policy.specific.versions:
        return None
    served = ", ".join(map(str, sorted(policy.specific.versions)))
    return (f"version {version} is not served yet: the version policy serves only version(s) {served}; "
            f"serve it with `tritonstack versions canary {config.name} {version}` or "
            f"`tritonstack versions promote {config.name} {version}`")
