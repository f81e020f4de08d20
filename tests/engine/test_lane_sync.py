"""The lanes' barrier: whatever a lane writes before it, every lane reads after it."""

from __future__ import annotations

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from nnctl.engine import lanes  # noqa: E402


@pytest.fixture(scope="module")
def sync():
    if not lanes.available():
        pytest.skip("lanes need numba with OpenMP threads")
    from nnctl.engine import lane_sync

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two threads")
    return lane_sync


def _rounds_kernel(sync):
    barrier = sync.barrier

    @numba.njit(parallel=True, nogil=True)
    def rounds(slots, seen, flags, n_rounds, lanes):
        for lane in numba.prange(lanes):
            for r in range(n_rounds):
                slots[lane * 8] = r + 1  # this round's value, in the lane's own cache line
                barrier(flags, lane, lanes)
                low = n_rounds + 1
                for other in range(lanes):
                    low = min(low, slots[other * 8])
                seen[lane, r] = low  # every lane has written round r + 1
                barrier(flags, lane, lanes)  # nobody writes round r + 2 before all have read

    return rounds


def test_every_lane_sees_every_write_made_before_the_barrier(sync):
    rounds = _rounds_kernel(sync)
    n_rounds = 20_000
    old = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        ids = np.full(2, -1, np.int64)
        sync.thread_ids(ids, 2)
        assert ids[0] != ids[1]
        slots, seen, flags = np.zeros(16, np.int64), np.zeros((2, n_rounds), np.int64), np.zeros(16, np.int64)
        rounds(slots, seen, flags, n_rounds, 2)
    finally:
        numba.set_num_threads(old)
    expected = np.arange(1, n_rounds + 1)
    np.testing.assert_array_equal(seen[0], expected)
    np.testing.assert_array_equal(seen[1], expected)
    assert flags[0] == flags[8] == 2 * n_rounds
