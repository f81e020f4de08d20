"""NumPy's own float32 exp and log loops, as compiled lanes call them."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("llvmlite")

from nnctl.engine import numpy_loops  # noqa: E402


def test_the_float32_loops_are_found_and_give_the_ufuncs_bits():
    assert numpy_loops.register()
    rng = np.random.default_rng(5)
    for name, values in (("exp", rng.uniform(-90, 90, 1001)), ("log", 10.0 ** rng.uniform(-40, 38, 1001))):
        values = values.astype(np.float32)
        address = numpy_loops._float32_loop(getattr(np, name))
        out = np.empty_like(values)
        numpy_loops._call(address, values[:333], out[:333])
        numpy_loops._call(address, values[333:], out[333:])
        with np.errstate(over="ignore"):
            np.testing.assert_array_equal(out.view(np.int32), getattr(np, name)(values).view(np.int32))


def test_a_loop_that_rounds_otherwise_is_refused():
    assert not numpy_loops._agrees("exp", numpy_loops._float32_loop(np.log))
    assert not numpy_loops._agrees("log", numpy_loops._float32_loop(np.exp))


def test_only_one_input_ufuncs_with_a_float32_loop_are_taken():
    assert numpy_loops._float32_loop(np.add) is None
    assert numpy_loops._float32_loop(np.isnat) is None  # no float32 loop at all
