"""Datasets for training: load a source, split it, and fit the input and target transforms.

Modules, one concept each: ``sources`` (where a source lives, which reader), ``columnar``
(CSV and Parquet via pyarrow), ``npz``, ``table`` (parsed columns, bad-cell errors),
``labels``, ``targets``, ``splitting``, ``imputer``, ``scalers``, ``preprocess`` (the fitted
transform), ``memory`` (the low-memory NPZ path) and ``loading`` (all of it together).
"""

from nnctl.app.data.imputer import MISSING_STRATEGIES
from nnctl.app.data.loading import Splits, load_splits, raw_features, read_chunks_of, read_tables, transform_file
from nnctl.app.data.preprocess import Preprocessor, refit_scaling
from nnctl.app.data.scalers import NORMALIZERS
from nnctl.app.data.sources import BUILTINS, data_dir, resolve_source
from nnctl.app.data.splitting import split_indices

__all__ = [
    "BUILTINS",
    "MISSING_STRATEGIES",
    "NORMALIZERS",
    "Preprocessor",
    "Splits",
    "data_dir",
    "load_splits",
    "raw_features",
    "read_chunks_of",
    "read_tables",
    "refit_scaling",
    "resolve_source",
    "split_indices",
    "transform_file",
]
