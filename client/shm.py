"""System shared memory for large tensors: local regions that never outlive the call.

    with TritonClient(url, ClientOptions(headers=admin_headers)) as client:
        out = client.infer_shm("digits_mlp", big_batch)    # same result as client.infer

`ShmTensors` creates one POSIX shared-memory region per input (filled) and per output, hands
tritonclient the InferInput/InferRequestedOutput objects that point at them, copies the outputs
out, and unlinks every region on exit, also when the call failed. The transports register and
unregister the regions on the server (with the client's headers) inside that block.

Regions are files under /dev/shm opened and mapped with the standard library (what `shm_open`
does on Linux). `tritonclient.utils.shared_memory` does the same through a C helper, but it
imports `pkg_resources`, which setuptools >= 81 no longer ships, so it is not used here.
"""

from __future__ import annotations

import grp
import logging
import mmap
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from tritonstack.client.core import Call

from tritonstack.errors import SharedMemoryError

__all__ = [
    "SHM_DIR", "UNREGISTER_PAUSES_S", "Region", "ShmTensors", "UnregisterRetry",
    "region_in_use", "region_prefix",
]

_LOGGER = logging.getLogger(__name__)
#: Where Linux keeps POSIX shared memory; region key "/name" is the file SHM_DIR/name.
SHM_DIR = Path("/dev/shm")


#: Group of the unprivileged user an embedded server started by root runs as (serve/sandbox.py).
SERVER_GROUP = "tritonstack"


def _share_with_server(fd: int) -> None:
    """As root, open the region to SERVER_GROUP (0660) so a server that dropped to it can map it."""
    if os.geteuid() != 0:
        return
    try:
        gid = grp.getgrnam(SERVER_GROUP).gr_gid
    except KeyError:
        return
    os.fchown(fd, -1, gid)
    os.fchmod(fd, 0o660)


#: Pauses before retrying an unregister that Triton refused because the region is "currently in
#: use": 2.51 can answer a request before it drops the request's hold on its regions (1 unregister
#: in ~60 at 4 calls in flight, 4096 x 64 FP32), and a region left registered stays mapped by the
#: server until it restarts. 0.9 s in all.
UNREGISTER_PAUSES_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


def region_in_use(error: Exception) -> bool:
    """Whether an unregister failed only because the server still holds the region for a moment."""
    return "currently in use" in str(error)


class UnregisterRetry:
    """Drives the unregister of one region: `while retry.again(error_or_none): sleep(retry.pause)`."""

    def __init__(self, name: str) -> None:
        self.name, self.pause, self._tries = name, 0.0, 0

    def again(self, error: Exception | None) -> bool:
        """True to try again after `self.pause`; False when done (a final failure is logged: the
        local region is unlinked anyway, but the server keeps it mapped until it restarts)."""
        if error is None:
            return False
        if self._tries < len(UNREGISTER_PAUSES_S) and region_in_use(error):
            self.pause, self._tries = UNREGISTER_PAUSES_S[self._tries], self._tries + 1
            return True
        _LOGGER.warning("could not unregister shared-memory region %s: %s", self.name, error)
        return False


def region_prefix() -> str:
    """Prefix of every region this process creates (also the /dev/shm file name prefix)."""
    return f"tritonstack_client_{os.getpid()}_"


@dataclass
class Region:
    """One local region: Triton's name for it, its shm key, size, the tensor it holds, its map."""

    name: str
    key: str
    byte_size: int
    tensor: str
    is_input: bool
    buffer: mmap.mmap | None = None

    def create(self) -> None:
        """Create the region exclusively (mode 0600) and map it."""
        fd = os.open(SHM_DIR / self.name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _share_with_server(fd)
            os.ftruncate(fd, self.byte_size)
            self.buffer = mmap.mmap(fd, self.byte_size)
        except BaseException:
            os.unlink(SHM_DIR / self.name)
            raise
        finally:
            os.close(fd)

    def destroy(self) -> None:
        """Unmap and unlink; safe to call twice."""
        if self.buffer is not None:
            self.buffer.close()
            self.buffer = None
            (SHM_DIR / self.name).unlink(missing_ok=True)


class ShmTensors:
    """The shared-memory regions of one call; a context manager that always unlinks them."""

    def __init__(self, call: Call) -> None:
        self.call = call
        base = f"{region_prefix()}{secrets.token_hex(4)}_"
        for name, array in call.arrays.items():
            if array.dtype == np.object_ or array.nbytes == 0:
                raise SharedMemoryError(f"input {name!r} has dtype {array.dtype} and shape {array.shape}; "
                                        "shared memory takes non-empty fixed-size tensors, use infer()")
        sizes = [(name, array.nbytes, True) for name, array in call.arrays.items()]
        sizes += [(name, self._output_bytes(name), False) for name in call.outputs]
        self.regions = [Region(name=f"{base}{i}", key=f"/{base}{i}", byte_size=size, tensor=tensor,
                               is_input=is_input) for i, (tensor, size, is_input) in enumerate(sizes)]

    def _output_bytes(self, name: str) -> int:
        info = self.call.info
        tensor = info.outputs[name]
        if tensor.datatype == "BYTES" or any(d < 0 for d in tensor.dims):
            raise SharedMemoryError(
                f"output {name!r} of model {info.name!r} has type {tensor.datatype} and dims "
                f"{tensor.dims}; shared memory needs a fixed-size output, use infer() instead")
        rows = (next(iter(self.call.arrays.values())).shape[0],) if info.batched else ()
        return int(np.prod(rows + tensor.dims, dtype=np.int64)) * tensor.dtype.itemsize

    def __enter__(self) -> ShmTensors:
        try:
            for region in self.regions:
                region.create()
                if region.is_input:
                    array = np.ascontiguousarray(self.call.arrays[region.tensor])
                    assert region.buffer is not None
                    region.buffer[:region.byte_size] = array.view(np.uint8).reshape(-1).data
        except OSError as exc:
            self.close()
            raise SharedMemoryError(f"cannot create shared-memory region in {SHM_DIR}: {exc}; "
                                    "is /dev/shm mounted and not full?") from exc
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Unmap and unlink every region created so far; safe to call twice."""
        for region in self.regions:
            try:
                region.destroy()
            except OSError as exc:  # keep going: unlink the others
                _LOGGER.warning("could not destroy shared-memory region %s: %s", region.key, exc)

    def tensors(self, module: Any) -> tuple[list[Any], list[Any]]:
        """(InferInput list, InferRequestedOutput list) pointing at the regions."""
        info, inputs, outputs = self.call.info, [], []
        for region in self.regions:
            if region.is_input:
                array = self.call.arrays[region.tensor]
                datatype = info.inputs[region.tensor].datatype
                item = module.InferInput(region.tensor, list(array.shape), datatype)
                item.set_shared_memory(region.name, region.byte_size)
                inputs.append(item)
            else:
                wanted = module.InferRequestedOutput(region.tensor)
                wanted.set_shared_memory(region.name, region.byte_size)
                outputs.append(wanted)
        return inputs, outputs

    def read_outputs(self, result: Any) -> dict[str, np.ndarray]:
        """Copies of the outputs the server wrote into the regions."""
        arrays = {}
        for region in self.regions:
            if region.is_input or region.buffer is None:
                continue
            shape = tuple(int(d) for d in result.get_output(region.tensor).shape)
            dtype = self.call.info.outputs[region.tensor].dtype
            count = int(np.prod(shape, dtype=np.int64))
            arrays[region.tensor] = np.frombuffer(region.buffer, dtype, count).reshape(shape).copy()
        return arrays
