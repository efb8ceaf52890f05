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

import atexit
import grp
import logging
import mmap
import os
import secrets
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from tritonstack.client.core import Call

from tritonstack.errors import ClientError, InvalidInputError, ServerUnavailableError, SharedMemoryError

__all__ = [
    "SHM_DIR", "UNREGISTER_PAUSES_S", "Region", "ShmPool", "ShmTensors", "UnregisterRetry",
    "lost_registration", "region_in_use", "region_prefix", "remove_stale_files", "stale_regions",
]

_LOGGER = logging.getLogger(__name__)
#: Where Linux keeps POSIX shared memory; region key "/name" is the file SHM_DIR/name.
SHM_DIR = Path("/dev/shm")
_PREFIX = "tritonstack_client_"  # then the pid of the process that made the region


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
    return f"{_PREFIX}{os.getpid()}_"


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


def _check_dtype(call: Call, name: str, array: np.ndarray) -> None:
    """Raw bytes in a region carry no dtype: the model's is assumed, so another one is refused (also
    with validation off; over gRPC the request names the dtype and the server refuses a mismatch)."""
    expected = call.info.inputs[name].dtype
    if array.dtype != expected:
        raise InvalidInputError(f"input {name!r} has dtype {array.dtype}; model {call.info.name!r} expects "
                                f"{call.info.inputs[name].datatype} ({expected}): convert it (astype) before "
                                "sending it through shared memory")


class ShmTensors:
    """The shared-memory regions of one call; a context manager that always unlinks them.

    With `rows`, the regions are sized for that many rows instead of the call's (fixed-size tensors
    only), so that later calls of up to `rows` rows can `load` into them: a slot of `ShmPool`.
    """

    def __init__(self, call: Call, *, rows: int | None = None) -> None:
        self.call = call
        base = f"{region_prefix()}{secrets.token_hex(4)}_"
        for name, array in call.arrays.items():
            if array.dtype == np.object_ or array.nbytes == 0:
                raise SharedMemoryError(f"input {name!r} has dtype {array.dtype} and shape {array.shape}; "
                                        "shared memory takes non-empty fixed-size tensors, use infer()")
            _check_dtype(call, name, array)
        if rows is None:
            sizes = [(name, array.nbytes, True) for name, array in call.arrays.items()]
        else:
            sizes = [(name, self._bytes(name, rows, is_input=True), True) for name in call.arrays]
        rows = rows if rows is not None else self._rows(call)
        sizes += [(name, self._bytes(name, rows, is_input=False), False) for name in call.outputs]
        self.regions = [Region(name=f"{base}{i}", key=f"/{base}{i}", byte_size=size, tensor=tensor,
                               is_input=is_input) for i, (tensor, size, is_input) in enumerate(sizes)]
        self.registered: list[str] = []  # names of the regions the server has (kept by the transports)

    @staticmethod
    def _rows(call: Call) -> int:
        return next(iter(call.arrays.values())).shape[0] if call.info.batched else 1

    def _bytes(self, name: str, rows: int, *, is_input: bool) -> int:
        """Bytes of `rows` rows of a tensor of the model (SharedMemoryError for a variable size)."""
        info = self.call.info
        tensor = (info.inputs if is_input else info.outputs)[name]
        if tensor.datatype == "BYTES" or any(d < 0 for d in tensor.dims):
            kind = "input" if is_input else "output"
            raise SharedMemoryError(
                f"{kind} {name!r} of model {info.name!r} has type {tensor.datatype} and dims "
                f"{tensor.dims}; shared memory needs a fixed-size {kind}, use infer() instead")
        batch = (rows,) if info.batched else ()
        return int(np.prod(batch + tensor.dims, dtype=np.int64)) * tensor.dtype.itemsize

    def load(self, call: Call) -> None:
        """Make `call` this slot's call: its inputs written into the input regions."""
        self.call = call
        for region in self.regions:
            if region.is_input:
                array = np.ascontiguousarray(call.arrays[region.tensor])
                _check_dtype(call, region.tensor, array)
                if array.nbytes > region.byte_size:  # only when validation is off
                    tensor = call.info.inputs[region.tensor]
                    raise InvalidInputError(
                        f"input {region.tensor!r} has shape {array.shape} and dtype {array.dtype}; model "
                        f"{call.info.name!r} takes {tensor.datatype} rows of dims {tensor.dims} (and so do "
                        "the shared-memory regions sized for it)")
                assert region.buffer is not None
                region.buffer[:array.nbytes] = array.view(np.uint8).reshape(-1).data

    def __enter__(self) -> ShmTensors:
        try:
            for region in self.regions:
                region.create()
            self.load(self.call)
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
                item.set_shared_memory(region.name, array.nbytes)
                inputs.append(item)
            else:
                wanted = module.InferRequestedOutput(region.tensor)
                wanted.set_shared_memory(region.name, self._bytes(region.tensor, self._rows(self.call),
                                                                  is_input=False))
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


class ShmPool:
    """Shared-memory slots reused by the chunks of one bulk prediction: a chunk takes a free slot (or a
    new one, sized for `rows` rows, whose regions the caller registers), and gives it back once answered. The
    server maps each region once, instead of per chunk. Thread-safe (the sync client's chunks run in
    threads). The caller unregisters `slots` and then `close`s the pool."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.slots: list[ShmTensors] = []
        self._free: list[ShmTensors] = []
        self._lock = threading.Lock()
        #: what the owning client does to release the pool (unregister, then close) at interpreter exit,
        #: for an iteration left unfinished: a generator finalized during shutdown can no longer call
        self.at_exit: Callable[[], None] | None = None
        _LIVE_POOLS.add(self)

    def take(self, call: Call) -> ShmTensors:
        """A slot loaded with `call`'s inputs (a new one's regions are not registered yet: see
        `ShmTensors.registered`)."""
        with self._lock:
            slot = self._free.pop() if self._free else None
        if slot is not None:
            slot.load(call)
            return slot
        slot = ShmTensors(call, rows=self.rows).__enter__()
        with self._lock:
            self.slots.append(slot)
        return slot

    def give_back(self, slot: ShmTensors) -> None:
        """The slot's call was answered (or failed): the next chunk may take it."""
        with self._lock:
            self._free.append(slot)

    def close(self) -> None:
        """Unmap and unlink every slot's regions; safe to call twice."""
        for slot in self.slots:
            slot.close()


def lost_registration(error: ClientError, shm: ShmTensors) -> ClientError:
    """The error to raise for `error` from an inference through `shm`: a server that no longer knows
    a region (it restarted and lost its registrations: NOT_FOUND "Unable to find shared memory
    region") gives a retryable ServerUnavailableError, and `shm` forgets its registrations so that
    the retry registers them again; any other error as it is."""
    if "unable to find shared memory region" not in str(error).lower():
        return error
    shm.registered.clear()
    return ServerUnavailableError(f"{error}; the server lost its shared-memory registrations (it "
                                  "restarted?): they are registered again on a retry")


_LIVE_POOLS: weakref.WeakSet[ShmPool] = weakref.WeakSet()


@atexit.register
def _release_live_pools() -> None:
    """At exit: release the pools of iterations never finished (the owner's `at_exit`, else unlink)."""
    for pool in list(_LIVE_POOLS):
        try:
            if pool.at_exit is not None:
                pool.at_exit()
        except Exception as exc:  # noqa: BLE001 - exiting: unlink the files whatever happened
            _LOGGER.warning("could not unregister shared-memory regions at exit: %s", exc)
        pool.close()


def _stale(name: str) -> bool:
    """Whether `name` is a region of this library whose process is gone (killed before it could release
    it: SIGKILL, or SIGTERM's default action, which runs no cleanup), and whose file is missing or this
    user's: its registration and file are then left for good."""
    if not name.startswith(_PREFIX):
        return False
    try:
        pid = int(name[len(_PREFIX):].split("_", 1)[0])
        os.kill(pid, 0)
    except ProcessLookupError:
        try:
            return (SHM_DIR / name).stat().st_uid == os.geteuid()
        except FileNotFoundError:
            return True
    except (ValueError, PermissionError, OverflowError):
        return False
    return False


def stale_regions(status: Any) -> list[str]:
    """The stale regions (see `_stale`) in a server's shared-memory status (JSON form)."""
    regions = status.get("regions") or {} if isinstance(status, dict) else {}
    names = regions.keys() if isinstance(regions, dict) else (r.get("name", "") for r in regions)
    return [name for name in names if _stale(name)]


def remove_stale_files() -> None:
    """Unlink the files of stale regions of this library in SHM_DIR."""
    for path in SHM_DIR.glob(f"{_PREFIX}*"):
        if _stale(path.name):
            path.unlink(missing_ok=True)
