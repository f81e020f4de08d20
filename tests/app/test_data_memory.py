"""The low-memory NPZ path of load_splits: same results as the general path, one copy of X."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import nnctl.app.data.loading as loading
import nnctl.app.data.memory as memory
import nnctl.app.data.sources as data_io
from nnctl.app.data import load_splits
from nnctl.app.errors import DataError
from tests.app.test_data import BAD_NPZS, Data, Split, rng, save_npz

SPLIT_NAMES = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few rows, so every block loop runs many times on small data."""
    monkeypatch.setattr(data_io, "CHUNK_ELEMS", 40)


def both_paths(path: str, data: Data, seed: int, dtype=np.float32):
    fast = memory.load_numeric_npz(Path(path), data, rng(seed), np.dtype(dtype))
    general = loading.load_table_splits(Path(path), data, rng(seed), dtype)
    return fast, general


def assert_same(fast, general, dtype=np.float32):
    for name in SPLIT_NAMES:
        a, b = getattr(fast, name), getattr(general, name)
        assert a.shape == b.shape and a.dtype == b.dtype, name
        if name.startswith("X"):
            assert a.flags.c_contiguous
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(a, b, err_msg=name)
    assert fast.data_hash == general.data_hash
    assert fast.warnings == general.warnings
    p, q = fast.prep, general.prep
    for attr in ("task", "feature_columns", "target", "categorical", "normalize", "classes", "input_names"):
        assert getattr(p, attr) == getattr(q, attr), attr
    for attr in ("offset", "scale", "target_mean", "target_scale"):
        a, b = getattr(p, attr), getattr(q, attr)
        assert (a is None) == (b is None), attr
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=attr)
    pa, qa = p.to_arrays(), q.to_arrays()
    assert pa.keys() == qa.keys()
    for key in pa:
        if pa[key].dtype.kind == "f":
            np.testing.assert_allclose(pa[key], qa[key], rtol=1e-12, atol=1e-12)
        else:
            np.testing.assert_array_equal(pa[key], qa[key])


def features(n: int, d: int, stored, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed)
    if np.dtype(stored).kind in "iu":
        return g.integers(0, 200, (n, d)).astype(stored)
    X = g.normal(3.0, 2.0, (n, d)) * np.linspace(0.5, 50, d)
    X[:, 1] = 7.0  # a constant column keeps scale 1
    return X.astype(stored)


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("normalize", ["none", "standard", "minmax", "minmax_symmetric"])
@pytest.mark.parametrize("stored", [np.float32, np.float64, np.uint8])
def test_fast_path_matches_general_path_classification(tmp_path, normalize, stored):
    X = features(103, 5, stored)
    y = np.random.default_rng(1).integers(0, 3, 103)
    source = save_npz(tmp_path, "c.npz", X=X, y=y)
    data = Data(source=source, normalize=normalize, split=Split(validation=0.2, test=0.15))
    fast, general = both_paths(source, data, seed=4)
    assert_same(fast, general)
    assert len(fast.X_val) == round(0.2 * 103) and len(fast.X_test) == round(0.15 * 103)


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale_target", [False, True])
def test_fast_path_matches_general_path_regression(tmp_path, dtype, scale_target):
    X = features(90, 4, np.float64, seed=2)
    y = np.random.default_rng(3).normal(size=(90, 2)) * 10 + 4
    source = save_npz(tmp_path, "r.npz", X=X, y=y)
    data = Data(source=source, normalize="standard", scale_target=scale_target,
                split=Split(validation=0.3, test=0.1, stratify=False))
    fast, general = both_paths(source, data, seed=9, dtype=dtype)
    assert fast.prep.task == "regression"
    assert_same(fast, general, dtype)


@pytest.mark.usefixtures("small_blocks")
def test_fast_path_with_test_arrays_and_text_labels(tmp_path):
    X = features(60, 3, np.float32, seed=5)
    X_test = features(17, 3, np.float64, seed=6)
    labels = np.array(["cat", "dog", "emu"])
    y = labels[np.random.default_rng(7).integers(0, 3, 60)]
    y_test = labels[np.random.default_rng(8).integers(0, 3, 17)]
    source = save_npz(tmp_path, "t.npz", X=X, y=y, X_test=X_test, y_test=y_test)
    data = Data(source=source, normalize="minmax", split=Split(validation=0.25, test=0.5))
    fast, general = both_paths(source, data, seed=1)
    assert fast.prep.classes == ("cat", "dog", "emu")
    assert fast.X_test.shape == (17, 3) and fast.X_train.shape == (45, 3)
    assert_same(fast, general)


def test_splits_are_views_of_one_array_and_load_splits_takes_the_fast_path(tmp_path, monkeypatch):
    X = features(50, 4, np.float32)
    source = save_npz(tmp_path, "v.npz", X=X, y=np.arange(50) % 2)

    def no_table(*args, **kwargs):
        raise AssertionError("read_tables used")

    monkeypatch.setattr(loading, "read_tables", no_table)
    splits = load_splits(Data(source=source, normalize="standard", split=Split(0.2, 0.2)), rng())
    parts = [splits.X_train, splits.X_val, splits.X_test]
    assert [len(x) for x in parts] == [30, 10, 10]
    for x, after in zip(parts, parts[1:]):  # one array: each split starts where the last ended
        assert after.ctypes.data == x.ctypes.data + x.nbytes
    assert all(x.flags.c_contiguous and not x.flags.owndata and x.dtype == np.float32 for x in parts)
    assert splits.data_hash == hashlib.sha256(Path(source).read_bytes()).hexdigest()


def test_permute_rows_in_place():
    g = np.random.default_rng(0)
    X = g.normal(size=(257, 3))
    for order in (g.permutation(257), np.arange(257), np.arange(257)[::-1].copy()):
        Y = X.copy()
        memory.permute_rows(Y, order)
        np.testing.assert_array_equal(Y, X[order])


def test_file_hash_streams_in_pieces(tmp_path, monkeypatch):
    monkeypatch.setattr(data_io, "HASH_CHUNK", 7)
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(256)) * 3)
    assert data_io.file_sha256(path, "f") == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(DataError, match="nope: file not found"):
        data_io.file_sha256(tmp_path / "missing", "nope")


@pytest.mark.parametrize(("name", "arrays", "expected"), BAD_NPZS, ids=[c[0] for c in BAD_NPZS])
def test_bad_npz_same_message_on_both_paths(tmp_path, name, arrays, expected):
    source = save_npz(tmp_path, name, **arrays)
    messages = []
    for load in (memory.load_numeric_npz, loading.load_table_splits):
        with pytest.raises(DataError) as info:
            load(Path(source), Data(source=source), rng(), np.dtype(np.float32))
        messages.append(info.value.message)
    assert messages[0] == messages[1] and source + expected in messages[0]


@pytest.mark.usefixtures("small_blocks")
def test_first_non_finite_cell_is_column_first_across_blocks(tmp_path):
    X = features(40, 5, np.float64)
    X[3, 4] = np.nan  # an earlier row, a later column
    X[30, 2] = -np.inf
    X[35, 2] = np.nan
    source = save_npz(tmp_path, "bad.npz", X=X, y=np.arange(40) % 2)
    for load in (memory.load_numeric_npz, loading.load_table_splits):
        with pytest.raises(DataError, match=r"row 31, column 'x2': '-inf' is not a finite number"):
            load(Path(source), Data(source=source), rng(), np.dtype(np.float32))


MEASURE = textwrap.dedent("""
    import re, resource, sys
    from types import SimpleNamespace
    import numpy as np
    from nnctl.app.data import load_splits

    def peak_rss():
        # getrusage(RUSAGE_SELF).ru_maxrss, except that on Linux it keeps the high-water mark
        # of the process that forked us (pytest) across exec; /proc's VmHWM is this process's own.
        try:
            with open("/proc/self/status") as f:
                return int(re.search(r"VmHWM:\\s+(\\d+) kB", f.read()).group(1)) * 1024
        except OSError:
            unit = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit

    split = SimpleNamespace(validation=0.1, test=0.1, stratify=True)
    data = SimpleNamespace(source=sys.argv[1], target=None, task=None, categorical=[],
                           normalize="standard", scale_target=False, split=split)
    before = peak_rss()
    splits = load_splits(data, np.random.default_rng(0))
    after = peak_rss()
    assert splits.X_train.dtype == np.float32 and len(splits.X_train) == 16000
    print(after - before)
""")


def test_load_splits_peak_memory_is_about_one_copy_of_x(tmp_path):
    pytest.importorskip("resource")
    n, d = 20_000, 784
    path = tmp_path / "big.npz"
    X = np.random.default_rng(0).random((n, d), dtype=np.float32)
    np.savez(path, X=X, y=np.arange(n) % 10)
    x_bytes = X.nbytes
    del X
    done = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    growth = int(done.stdout.split()[-1])
    assert growth <= 1.5 * x_bytes + 20 * 2**20, f"peak grew by {growth / 2**20:.0f} MiB for {x_bytes / 2**20:.0f} MiB of X"
