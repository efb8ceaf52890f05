"""System shared memory for large tensors: local regions that never outlive the call.

    with TritonClient(url, ClientOptions(headers=admin_headers)) as client:
        out = client.infer_shm("digits_mlp", big_batch)    # same result as client.infer

`ShmTensors` creates one region per input (filled) and per output, hands tritonclient the
InferInput/InferRequestedOutput objects that point at them, copies the outputs out, and unlinks
every region on exit, also when the call failed. The transports register and unregister the
regions on the server (with the client's headers) inside that block.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np
from tritonstack.client.core import Call

from tritonstack.errors import SharedMemoryError

__all__ = ["Region", "ShmTensors", "region_prefix"]

_LOGGER = logging.getLogger(__name__)


def region_prefix() -> str:
    """Prefix of every region this process creates (also the /dev/shm file name prefix)."""
    return f"tritonstack_client_{os.getpid()}_"


@dataclass
class Region:
    """One local region: Triton's name for it, its /dev/shm key, size and the tensor it holds."""

    name: str
    key: str
    byte_size: int
    tensor: str
    is_input: bool
    handle: Any = None


class ShmTensors:
    """The shared-memory regions of one call; a context manager that always unlinks them."""

    def __init__(self, call: Call) -> None:
        self.call = call
        base = f"{region_prefix()}{secrets.token_hex(4)}_"
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
        from tritonclient.utils import shared_memory as shm

        try:
            for region in self.regions:
                region.handle = shm.create_shared_memory_region(region.name, region.key,
                                                                max(region.byte_size, 1))
                if region.is_input:
                    array = self.call.arrays[region.tensor]
                    if array.dtype == np.object_:
                        raise SharedMemoryError(f"input {region.tensor!r} holds strings; "
                                                "shared memory takes fixed-size tensors, use infer()")
                    shm.set_shared_memory_region(region.handle, [array])
        except shm.SharedMemoryException as exc:
            self.close()
            raise SharedMemoryError(f"cannot create shared-memory region: {exc}; is /dev/shm full?") from exc
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Unmap and unlink every region created so far; safe to call twice."""
        from tritonclient.utils import shared_memory as shm

        for region in self.regions:
            if region.handle is None:
                continue
            try:
                shm.destroy_shared_memory_region(region.handle)
            except shm.SharedMemoryException as exc:  # keep going: unlink the others
                _LOGGER.warning("could not destroy shared-memory region %s: %s", region.key, exc)
            region.handle = None

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
        from tritonclient.utils import shared_memory as shm

        arrays = {}
        for region in self.regions:
            if region.is_input:
                continue
            output = result.get_output(region.tensor)
            shape = [int(d) for d in output.shape]
            dtype = self.call.info.outputs[region.tensor].dtype
            arrays[region.tensor] = np.array(shm.get_contents_as_numpy(region.handle, dtype, shape))
        return arrays
