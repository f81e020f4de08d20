"""A barrier for the lanes of one parallel region (numba), so that a whole training step
runs in one region: every lane waits at ``barrier`` until all have reached it.

Each lane counts the barriers it has passed in its own cache line of ``flags``
(``flags[8·k]``, int64): arriving, it publishes count + 1 with a release store, then
waits until every lane's count has reached that number, reading them with acquire
loads, so that whatever a lane wrote before the barrier is seen by every lane after it.
No lane writes another's count, so no atomic read-modify-write is needed.  Waiting
spins with the CPU's pause hint and yields the core after every ``SPINS_PER_YIELD``
spins, in case the lane it waits for is not running.

Only for regions that run each lane in a thread of its own at the same time (a lane
waiting for one that runs after it in the same thread would wait forever): the caller
checks that with ``thread_ids`` before it uses a barrier.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

import numba
from llvmlite import binding as llvm
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

SPINS_PER_YIELD = 4096
STRIDE = 8
"""int64 entries between two lanes' counts: 64 bytes, one cache line each."""


def _register_yield() -> bool:
    """Make the C library's sched_yield callable from compiled code as ``nnctl_sched_yield``."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        fn = libc.sched_yield
    except (OSError, AttributeError):
        return False
    llvm.add_symbol("nnctl_sched_yield", ctypes.cast(fn, ctypes.c_void_p).value)
    return True


HAS_YIELD = _register_yield()
"""Whether ``barrier`` can be compiled here."""
_PAUSE = "llvm.x86.sse2.pause" if platform.machine().lower() in ("x86_64", "amd64", "i686", "x86") else ""
_sched_yield = types.ExternalFunction("nnctl_sched_yield", types.int32())


@intrinsic
def _load_acquire(typingctx, arr, i):
    """arr[i] as an atomic load with acquire ordering (int64 arrays)."""
    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])
        return builder.load_atomic(ptr, "acquire", 8)

    return types.int64(arr, types.intp), codegen


@intrinsic
def _store_release(typingctx, arr, i, value):
    """arr[i] = value as an atomic store with release ordering (int64 arrays)."""
    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])
        builder.store_atomic(args[2], ptr, "release", 8)
        return context.get_dummy_value()

    return types.void(arr, types.intp, types.int64), codegen


@intrinsic
def _pause(typingctx):
    """The CPU's spin-wait hint (x86 ``pause``); nothing elsewhere."""
    def codegen(context, builder, signature, args):
        if _PAUSE:
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []), _PAUSE)
            builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


_jit = numba.njit(cache=True, nogil=True)


@_jit
def barrier(flags, lane, lanes):
    """Wait until all ``lanes`` lanes have called this as often as lane ``lane`` has."""
    count = flags[STRIDE * lane] + 1
    _store_release(flags, STRIDE * lane, count)
    spins = 0
    for other in range(lanes):
        while _load_acquire(flags, STRIDE * other) < count:
            _pause()
            spins += 1
            if spins == SPINS_PER_YIELD:
                spins = 0
                _sched_yield()


@numba.njit(cache=True, nogil=True, parallel=True)
def thread_ids(out, lanes):
    """out[k] = the id of the thread that runs lane k (distinct ids: lanes run side by side)."""
    for lane in prange(lanes):
        out[lane] = numba.get_thread_id()
