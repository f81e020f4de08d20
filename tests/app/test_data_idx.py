"""Tests for nnctl.app.data.idx: the IDX format, IDX folders and pairs as data sources, their errors."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from nnctl.app.data import load_splits
from nnctl.app.errors import DataError
from nnctl.app.data.idx import is_idx_images, read_idx_bytes
from tests.app.data_specs import Data as DataSpec, Split
from tests.idx_files import idx_bytes, images_and_labels, write_folder, write_idx


def Data(source: str, labels: str | None = None, target: str | None = None, **fields) -> DataSpec:
    """A data section as IDX specs write it: a validation and a test split of 0.2 each
    unless given."""
    fields.setdefault("split", Split(0.2, 0.2))
    fields.setdefault("scale_target", True)
    return DataSpec(source, target=target, labels=labels, **fields)


def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8"])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trips_every_type(dtype, compress):
    values = (np.arange(24).reshape(2, 3, 4) * 5 - 7 * (dtype[-2] != "u")).astype(dtype)
    raw = idx_bytes(values)
    array = read_idx_bytes(gzip.compress(raw) if compress else raw, "f")
    assert array.shape == (2, 3, 4)
    assert array.dtype.isnative and array.dtype.kind == np.dtype(dtype).kind
    np.testing.assert_array_equal(array, values)


def test_uint8_images_stay_uint8_when_read():
    images, _ = images_and_labels(5, 0)
    assert read_idx_bytes(idx_bytes(images), "f").dtype == np.uint8


def test_folder_source_uses_t10k_as_the_test_split(tmp_path):
    folder = write_folder(tmp_path / "mnist", n_train=50, n_test=20, side=3)
    splits = load_splits(Data(str(folder), split=Split(0.2, 0.3)), rng(), dtype=np.float64)
    test_images, test_labels = images_and_labels(20, 1)
    train_images, _ = images_and_labels(50, 0)
    # normalize none: the test split is the t10k file, row for row
    np.testing.assert_array_equal(splits.X_test, test_images.reshape(20, 9).astype(np.float64))
    np.testing.assert_array_equal(splits.y_test, test_labels)
    assert len(splits.X_train) + len(splits.X_val) == 50 and len(splits.X_val) == 10
    train_rows = {row.tobytes() for row in train_images.reshape(50, 9).astype(np.float64)}
    assert all(row.tobytes() in train_rows for row in np.vstack([splits.X_train, splits.X_val]))
    assert splits.prep.feature_columns == tuple(f"x{j}" for j in range(9))
    assert splits.prep.classes == ("0", "1", "2") and splits.prep.task == "classification"
    files = [folder / f"{p}-{k}.gz" for p in ("train", "t10k")
             for k in ("images-idx3-ubyte", "labels-idx1-ubyte")]
    assert splits.data_hash == hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def test_folder_scaling_is_fitted_on_training_rows(tmp_path):
    folder = write_folder(tmp_path / "mnist", n_train=40, n_test=10)
    splits = load_splits(Data(str(folder), normalize="minmax", split=Split(0.25, 0.0)), rng())
    assert splits.X_train.dtype == np.float32
    np.testing.assert_allclose(splits.X_train.min(axis=0), 0.0)
    np.testing.assert_allclose(splits.X_train.max(axis=0), 1.0)


def test_folder_without_t10k_splits_off_a_test_fraction(tmp_path):
    folder = write_folder(tmp_path / "mnist", n_train=50, n_test=None, gz=False)
    splits = load_splits(Data(str(folder), split=Split(0.2, 0.2)), rng())
    assert (len(splits.X_train), len(splits.X_val), len(splits.X_test)) == (30, 10, 10)


def test_relative_folder_is_found_beside_the_spec(tmp_path, monkeypatch):
    write_folder(tmp_path / "specs" / "mnist")
    monkeypatch.chdir(tmp_path)
    splits = load_splits(Data("mnist/"), rng(), base_dirs=[tmp_path / "specs"])
    assert len(splits.X_test) == 30


def test_uncompressed_file_wins_over_gz(tmp_path):
    folder = write_folder(tmp_path / "mnist", n_train=30, n_test=None)
    write_idx(folder / "train-labels-idx1-ubyte", np.zeros(30, np.uint8) + np.arange(30, dtype=np.uint8) % 2)
    splits = load_splits(Data(str(folder), split=Split(0.0, 0.0)), rng())
    assert splits.prep.classes == ("0", "1")


def test_single_pair_with_labels_key_and_sibling_name(tmp_path):
    images, labels = images_and_labels(40, 3, side=2)
    write_idx(tmp_path / "emnist-letters-train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "emnist-letters-train-labels-idx1-ubyte.gz", labels)
    write_idx(tmp_path / "other.idx1", labels[::-1].copy())
    sibling = load_splits(Data(str(tmp_path / "emnist-letters-train-images-idx3-ubyte.gz"), split=Split(0.0, 0.0)),
                          rng(), dtype=np.float64)
    np.testing.assert_array_equal(sibling.y_train, labels)
    np.testing.assert_array_equal(sibling.X_train, images.reshape(40, 4))
    named = load_splits(Data(str(tmp_path / "emnist-letters-train-images-idx3-ubyte.gz"),
                             labels=str(tmp_path / "other.idx1"), split=Split(0.0, 0.0)), rng())
    np.testing.assert_array_equal(named.y_train, labels[::-1])
    split = load_splits(Data(str(tmp_path / "emnist-letters-train-images-idx3-ubyte.gz")), rng())
    assert (len(split.X_train), len(split.X_val), len(split.X_test)) == (24, 8, 8)


def test_is_idx_images():
    assert is_idx_images("a/train-images-idx3-ubyte.gz") and is_idx_images("x.IDX3-UBYTE")
    assert not is_idx_images("train-labels-idx1-ubyte.gz") and not is_idx_images("d.csv")


GOOD_IMAGES = idx_bytes(np.zeros((4, 2, 2), np.uint8))
GOOD_LABELS = idx_bytes(np.arange(4, dtype=np.uint8) % 2)

BAD_FILES = [
    ("bad-magic", "train-images-idx3-ubyte", b"\x01\x00" + GOOD_IMAGES[2:], "not an IDX file (header bytes 01 00 08 03"),
    ("bad-type", "train-images-idx3-ubyte", GOOD_IMAGES[:2] + b"\x07" + GOOD_IMAGES[3:], "not an IDX file"),
    ("no-dims", "train-images-idx3-ubyte", b"\x00\x00\x08\x00", "not an IDX file"),
    ("tiny", "train-labels-idx1-ubyte", b"\x00\x00", "too short for an IDX header (2 bytes)"),
    ("cut-header", "train-images-idx3-ubyte", GOOD_IMAGES[:10], "IDX header cut short: 3 dimensions need 16 bytes"),
    ("short-data", "train-images-idx3-ubyte", GOOD_IMAGES[:-1],
     "wrong size: the header promises 4 x 2 x 2 values of 1 byte(s) (32 bytes) but the file has 31 bytes"),
    ("long-data", "train-labels-idx1-ubyte", GOOD_LABELS + b"\x00", "wrong size"),
    ("bad-gzip", "train-images-idx3-ubyte.gz", gzip.compress(GOOD_IMAGES)[:-6], "not a readable gzip file"),
    ("labels-2d", "train-labels-idx1-ubyte", GOOD_IMAGES, "labels must be one integer per image"),
    ("float-labels", "train-labels-idx1-ubyte", idx_bytes(np.zeros(4, ">f4")), "labels must be one integer per image"),
    ("count-mismatch", "train-labels-idx1-ubyte", idx_bytes(np.zeros(3, np.uint8)),
     "train-labels-idx1-ubyte: 3 labels but {folder}/train-images-idx3-ubyte has 4 images"),
    ("one-dim-images", "train-images-idx3-ubyte", GOOD_LABELS, "images need at least 2 dimensions"),
    ("nan-pixel", "train-images-idx3-ubyte", idx_bytes(np.array([[[0, 1]], [[np.nan, 0]]] * 2, ">f4")),
     "image 2, pixel 0: nan is not a finite number"),
]


@pytest.mark.parametrize(("case", "name", "content", "expected"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_idx_files_name_the_file(tmp_path, case, name, content, expected):
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte").write_bytes(GOOD_IMAGES)
    (folder / "train-labels-idx1-ubyte").write_bytes(GOOD_LABELS)
    if name.endswith(".gz"):
        (folder / name[:-3]).unlink()
    (folder / name).write_bytes(content)
    with pytest.raises(DataError) as err:
        load_splits(Data(str(folder), split=Split(0.0, 0.0)), rng())
    message = str(err.value)
    assert message.startswith(f"{folder}/") and "\n" not in message
    assert expected.format(folder=folder) in message
    culprit = name if case != "count-mismatch" else "train-labels-idx1-ubyte"
    assert message.split(":")[0].split(",")[0] == f"{folder}/{culprit}"


def test_test_pair_with_other_image_size_is_an_error(tmp_path):
    folder = write_folder(tmp_path / "mnist", n_train=20, n_test=None)
    images, labels = images_and_labels(10, 1, side=4)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", images)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels)
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: images of 16 pixels but .*train-images"):
        load_splits(Data(str(folder)), rng())


@pytest.mark.parametrize(("remove", "expected"), [
    ("train-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte[.gz] not found in the IDX folder"),
    ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte[.gz] not found in the IDX folder"),
])
def test_folder_missing_a_file(tmp_path, remove, expected):
    folder = write_folder(tmp_path / "mnist")
    (folder / remove).unlink()
    with pytest.raises(DataError, match=rf"^{folder}: .*{expected}".replace("[.gz]", r"\[\.gz\]")):
        load_splits(Data(str(folder)), rng())


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        load_splits(Data(str(tmp_path)), rng())


@pytest.mark.parametrize(("data", "expected"), [
    (Data("{folder}", target="label"), "data.target: an IDX source's target is its labels file, called 'y'"),
    (Data("{folder}", categorical=["x0"]), "data.categorical: an IDX source has no categorical columns"),
    (Data("{folder}", labels="x.idx1"), "data.labels: {folder} is an IDX folder"),
    (Data("builtin:iris", labels="x.idx1"), "data.labels: only an IDX images source"),
    (Data("{folder}/train-images-idx3-ubyte.gz", labels="nope.idx1"), "nope.idx1: file not found (data.labels)"),
    (Data("{folder}/missing-idx3-ubyte"), "{folder}/missing-idx3-ubyte: file not found"),
])
def test_spec_keys_that_do_not_fit_an_idx_source(tmp_path, data, expected):
    folder = write_folder(tmp_path / "mnist")
    data = Data(data.source.format(folder=folder), data.labels, data.target, categorical=data.categorical)
    with pytest.raises(DataError, match="^" + expected.format(folder=folder).replace("(", r"\(").replace(")", r"\)")):
        load_splits(data, rng())


def test_images_file_without_labels_beside_it(tmp_path):
    images, _ = images_and_labels(5, 0)
    write_idx(tmp_path / "x-images-idx3-ubyte", images)
    with pytest.raises(DataError, match="labels file x-labels-idx1-ubyte not found beside it; name the idx1"):
        load_splits(Data(str(tmp_path / "x-images-idx3-ubyte")), rng())
