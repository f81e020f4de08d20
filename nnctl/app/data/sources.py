"""Where a data source lives, which reader reads it, and the file's hash."""

from __future__ import annotations

import hashlib
import importlib.resources
import os
from collections.abc import Sequence
from pathlib import Path

from nnctl.app.errors import DataError

BUILTINS = ("breast_cancer", "diabetes", "digits", "iris", "mnist1d", "xor")
BUILTIN_PREFIX = "builtin:"
HASH_CHUNK = 1 << 20  # bytes per read when hashing a file
CHUNK_ELEMS = 1 << 18  # cells per block when scanning a large array (2 MB as float64)
READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npz": "npz"}


def reader_for(path: Path) -> str:
    """The reader of a source file, by its suffix: ``csv`` (also any unknown suffix, as
    before), ``parquet`` or ``npz``. The one place that picks a reader."""
    return READERS.get(Path(path).suffix.lower(), "csv")


def data_dir() -> Path:
    """The built-in datasets' folder: ``$NNCTL_DATA_DIR``; else ``nnctl/datasets/`` where the
    package is installed (a wheel carries ``data/`` there); else ``data/`` beside the package
    (a source checkout or an editable install)."""
    override = os.environ.get("NNCTL_DATA_DIR")
    if override:
        return Path(override)
    installed = Path(str(importlib.resources.files("nnctl").joinpath("datasets"))).resolve()
    if installed.is_dir():
        return installed
    return installed.parent.parent / "data"


def resolve_source(source: str, base_dirs: Sequence[Path] = ()) -> Path:
    """Turn a spec's ``data.source`` into an existing file path.

    ``builtin:NAME`` maps to ``<data dir>/NAME.csv`` or ``NAME.npz``. A relative path is
    tried against the working directory, then each of ``base_dirs`` (the spec's folder).
    """
    if source.startswith(BUILTIN_PREFIX):
        name = source[len(BUILTIN_PREFIX):]
        if name not in BUILTINS:
            raise DataError(
                f"{source}: unknown built-in dataset; expected one of {', '.join(BUILTINS)}"
            )
        folder = data_dir()
        for suffix in (".csv", ".npz"):
            if (folder / f"{name}{suffix}").is_file():
                return folder / f"{name}{suffix}"
        raise DataError(
            f"{source}: data file not found in {folder}",
            hint="regenerate it: pip install scikit-learn mnist1d && python data/make_datasets.py",
        )
    path = Path(source).expanduser()
    candidates = [path] if path.is_absolute() else [path, *(Path(b) / path for b in base_dirs)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if any(c.is_dir() for c in candidates):
        raise DataError(f"{source}: is a directory, not a data file")
    tried = ", ".join(str(c) for c in candidates)
    raise DataError(f"{source}: file not found", hint=f"looked for: {tried}")


def unreadable(label: str, exc: OSError) -> DataError:
    """The error for a file that cannot be opened or read."""
    if isinstance(exc, FileNotFoundError):
        return DataError(f"{label}: file not found")
    return DataError(f"{label}: cannot read file ({exc.strerror or exc})")


def file_sha256(path: Path, label: str) -> str:
    """sha256 of the file's bytes (hex), read in ``HASH_CHUNK`` pieces."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(HASH_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise unreadable(label, exc) from None
    return digest.hexdigest()
