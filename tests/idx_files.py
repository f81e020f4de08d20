"""Small IDX files written by the tests (the real MNIST-family files are not in the repository)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

TYPE_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` in the IDX format: 00 00, type code, dimensions, sizes, big-endian values."""
    array = np.asarray(array)
    code = TYPE_CODES[array.dtype.str[1:]]
    header = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write ``array`` to ``path`` as IDX, gzip-compressed when the name ends in .gz."""
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
    return path


def images_and_labels(n: int, seed: int, side: int = 3, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 images of side x side whose labels can be learned (the class sets a bright pixel)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.uint8) % classes
    images = rng.integers(0, 60, size=(n, side, side), dtype=np.uint8)
    images.reshape(n, -1)[np.arange(n), labels] = 250
    return images, labels


def write_folder(folder: Path, n_train: int = 60, n_test: int | None = 30, gz: bool = True,
                 side: int = 3) -> Path:
    """An IDX folder like MNIST's: the train pair and, unless ``n_test`` is None, the t10k pair."""
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    pairs = [("train", n_train, 0)] + ([("t10k", n_test, 1)] if n_test is not None else [])
    for prefix, n, seed in pairs:
        images, labels = images_and_labels(n, seed, side)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels)
    return folder


def unshipped_data_args(config: Path, tmp_path: Path) -> list[str]:
    """``--set data.source=...`` pointing a shipped config whose data is not shipped (an IDX
    folder such as data/fashion-mnist/) at a small folder of 28 x 28 images; [] for the others."""
    import yaml

    source = yaml.safe_load(config.read_text(encoding="utf-8"))["data"]["source"]
    if source.startswith("builtin:"):
        return []
    folder = write_folder(tmp_path / Path(source).name, n_train=60, n_test=20, side=28)
    return ["--set", f"data.source={folder}"]
