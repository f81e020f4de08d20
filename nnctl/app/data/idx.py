"""IDX files, the format of MNIST and its family (Fashion-MNIST, KMNIST, EMNIST).

An IDX file is a header and a block of numbers, big-endian::

    bytes 0-1   0x00 0x00
    byte  2     type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions D
    then        D sizes, each a 4-byte unsigned integer (the first counts the items)
    then        prod(sizes) values, row-major

Images (``*-idx3-ubyte``: n x rows x cols) become rows of ``rows * cols`` features named
``x0 ... x{d-1}``, kept in their stored type (uint8) until they are scaled; labels
(``*-idx1-ubyte``: n) become the target ``y``. The names match an NPZ source's, so a model
trained on either reads the other. Files may be gzip-compressed (``.gz``).

A source is a folder holding ``train-images-idx3-ubyte[.gz]`` and ``train-labels-idx1-ubyte[.gz]``
(and, when present, the ``t10k-`` pair: the test split), or one images file with its labels
file (``data.labels``, by default the images file's name with ``images``/``idx3`` turned into
``labels``/``idx1``). Every problem is a one-line ``DataError`` naming the file.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import re
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.app.data.npz import NpzArrays
from nnctl.app.data.table import Column, Table
from nnctl.app.errors import DataError

IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
SPLIT_PREFIXES = ("train", "t10k")  # a folder's training pair, then its test pair
IMAGES_SUFFIX = "-images-idx3-ubyte"
LABELS_SUFFIX = "-labels-idx1-ubyte"
_IMAGES_NAME = re.compile(r"idx3-ubyte(\.gz)?$", re.IGNORECASE)
TARGET = "y"


@dataclass(frozen=True)
class IdxSource:
    """The files of an IDX source: (images, labels) for training rows and, optionally, test rows."""

    train: tuple[Path, Path]
    test: tuple[Path, Path] | None
    labels: dict[Path, str]  # how messages name each file

    def files(self) -> tuple[Path, ...]:
        return self.train + (self.test or ())


def is_idx_images(path: str | Path) -> bool:
    """Whether a file name is an IDX images file's (``...idx3-ubyte`` or ``...idx3-ubyte.gz``)."""
    return bool(_IMAGES_NAME.search(Path(path).name))


def find_idx_source(data: Any, base_dirs: Sequence[Path] = ()) -> IdxSource | None:
    """The IDX files that ``data.source`` (and ``data.labels``) name, or None for other sources.

    A folder is an IDX source; so is a file named ``*idx3-ubyte[.gz]``. A relative path is
    tried against the working directory, then each of ``base_dirs``, as for other sources.
    """
    labels_key = getattr(data, "labels", None)
    source = str(data.source)
    if source.startswith("builtin:"):
        if labels_key is not None:
            raise DataError(f"data.labels: only an IDX images source takes a labels file; source is {source}")
        return None
    path = _locate(source, base_dirs)
    if path is not None and path.is_dir():
        if labels_key is not None:
            raise DataError(f"data.labels: {source} is an IDX folder; its labels files are found by name")
        return _folder_source(path, source)
    if not is_idx_images(source):
        if labels_key is not None:
            raise DataError(f"data.labels: only an IDX images source (*-idx3-ubyte[.gz]) takes a labels file;"
                            f" source is {source}")
        return None
    if path is None:
        raise DataError(f"{source}: file not found")
    if labels_key is not None:
        labels_path = _locate(str(labels_key), base_dirs)
        if labels_path is None or not labels_path.is_file():
            raise DataError(f"{labels_key}: file not found (data.labels)")
        labels_label = str(labels_key)
    else:
        labels_path, labels_label = _sibling_labels(path, source)
    return IdxSource((path, labels_path), None, {path: source, labels_path: labels_label})


def _locate(source: str, base_dirs: Sequence[Path]) -> Path | None:
    path = Path(source).expanduser()
    candidates = [path] if path.is_absolute() else [path, *(Path(b) / path for b in base_dirs)]
    return next((c for c in candidates if c.exists()), None)


def _sibling_labels(images: Path, source: str) -> tuple[Path, str]:
    name = images.name.replace("images", "labels").replace("idx3", "idx1")
    if name == images.name or not (images.parent / name).is_file():
        raise DataError(f"{source}: labels file {name} not found beside it;"
                        " name the idx1 labels file in data.labels")
    return images.parent / name, str(Path(source).parent / name)


def _folder_source(folder: Path, source: str) -> IdxSource:
    pairs: list[tuple[Path, Path] | None] = []
    labels: dict[Path, str] = {}
    for prefix in SPLIT_PREFIXES:
        found = [_find_file(folder, prefix + suffix) for suffix in (IMAGES_SUFFIX, LABELS_SUFFIX)]
        names = [prefix + suffix for suffix in (IMAGES_SUFFIX, LABELS_SUFFIX)]
        if found[0] is None and found[1] is None and prefix != "train":
            pairs.append(None)
            continue
        for file, name in zip(found, names):
            if file is None:
                raise DataError(f"{source}: {name}[.gz] not found in the IDX folder"
                                f" (it needs {names[0]} and {names[1]}, optionally .gz)")
            labels[file] = str(Path(source) / file.name)
        pairs.append((found[0], found[1]))  # type: ignore[arg-type]
    assert pairs[0] is not None
    return IdxSource(pairs[0], pairs[1], labels)


def _find_file(folder: Path, name: str) -> Path | None:
    # The uncompressed copy wins when both are there (gunzip -k leaves both).
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx_bytes(raw: bytes, label: str) -> np.ndarray:
    """Parse one IDX file's bytes (gzip-compressed or not) into an array of its sizes, native byte order."""
    stored = "file"
    if raw[:2] == b"\x1f\x8b":
        stored = "decompressed file"
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{label}: not a readable gzip file ({exc})") from None
    if len(raw) < 4:
        raise DataError(f"{label}: too short for an IDX header ({len(raw)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code not in IDX_TYPES or ndim == 0:
        raise DataError(f"{label}: not an IDX file (header bytes {raw[:4].hex(' ')}; expected"
                        " 00 00, a type code 08/09/0b/0c/0d/0e and the number of dimensions)")
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise DataError(f"{label}: IDX header cut short: {ndim} dimensions need {start} bytes, the file has {len(raw)}")
    shape = struct.unpack(f">{ndim}I", raw[4:start])
    dtype = IDX_TYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - start != expected:
        sizes = " x ".join(str(s) for s in shape)
        raise DataError(f"{label}: wrong size: the header promises {sizes} values of {dtype.itemsize} byte(s)"
                        f" ({start + expected:,} bytes) but the {stored} has {len(raw):,} bytes")
    array = np.frombuffer(raw, dtype=dtype, offset=start).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False) if dtype.byteorder == ">" else array


def _read_file(path: Path, label: str, digest: Any) -> np.ndarray:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{label}: cannot read file ({exc.strerror or exc})") from None
    digest.update(raw)
    return read_idx_bytes(raw, label)


def _read_pair(source: IdxSource, pair: tuple[Path, Path], digest: Any, row_word: str) -> tuple[np.ndarray, Table]:
    images_label, labels_label = source.labels[pair[0]], source.labels[pair[1]]
    images = _read_file(pair[0], images_label, digest)
    labels = _read_file(pair[1], labels_label, digest)
    if images.ndim < 2:
        raise DataError(f"{images_label}: images need at least 2 dimensions (count, pixels...); got shape {images.shape}")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(f"{labels_label}: labels must be one integer per image (idx1, integer type);"
                        f" got shape {labels.shape}, type {labels.dtype}")
    if len(images) != len(labels):
        raise DataError(f"{labels_label}: {len(labels)} labels but {images_label} has {len(images)} images")
    if len(images) == 0:
        raise DataError(f"{images_label}: no images")
    X = images.reshape(len(images), -1)
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        row, j = (int(v) for v in np.argwhere(~np.isfinite(X))[0])
        raise DataError(f"{images_label}, image {row + 1}, pixel {j}: {float(X[row, j])!r} is not a finite number")
    return X, Table(labels_label, {TARGET: Column.from_numbers(labels)}, None, row_word)


def read_idx_source(source: IdxSource) -> tuple[NpzArrays, str]:
    """The source's arrays as an NPZ source's would be (X as stored, targets 'y'), and the sha256
    of its files' bytes taken in order (training images, labels, then the test pair)."""
    digest = hashlib.sha256()
    X, targets = _read_pair(source, source.train, digest, "row")
    if source.test is None:
        return NpzArrays(X, targets, None, None), digest.hexdigest()
    X_test, test_targets = _read_pair(source, source.test, digest, "test row")
    if X_test.shape[1] != X.shape[1]:
        test_label, train_label = source.labels[source.test[0]], source.labels[source.train[0]]
        raise DataError(f"{test_label}: images of {X_test.shape[1]} pixels but {train_label} has {X.shape[1]}")
    return NpzArrays(X, targets, X_test, test_targets), digest.hexdigest()


def check_target(data: Any) -> None:
    """An IDX target is its labels file, called ``y``; any other ``data.target`` is an error."""
    if data.target not in (None, TARGET):
        raise DataError(f"data.target: an IDX source's target is its labels file, called '{TARGET}';"
                        f" got '{data.target}'")
    if getattr(data, "categorical", None):
        raise DataError("data.categorical: an IDX source has no categorical columns")
