"""Write nnctl's built-in datasets into this folder, offline and deterministically.

Sources are scikit-learn's bundled files and mnist1d's generator; nothing is downloaded.
Re-running rewrites identical bytes.

    pip install scikit-learn mnist1d && python data/make_datasets.py
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

IRIS_COLUMNS = ("sepal_length", "sepal_width", "petal_length", "petal_width")
DIABETES_COLUMNS = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
MNIST1D_TRAIN, MNIST1D_TEST = 4000, 1000


def _cell(value: object) -> str:
    """Integers without a decimal point, floats by repr (shortest round-tripping form)."""
    if isinstance(value, str):
        return value
    number = float(value)  # type: ignore[arg-type]
    if number.is_integer() and abs(number) < 2**53:
        return str(int(number))
    return repr(number)


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """Write ``rows`` under ``header`` with ``\\n`` line endings; return the row count."""
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([_cell(value) for value in row])
            count += 1
    return count


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed`` but with fixed zip timestamps, so the bytes (and hash) repeat."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def _labelled_rows(X: np.ndarray, labels: Sequence[object]) -> list[list[object]]:
    return [[*map(float, x), label] for x, label in zip(X, labels)]


def make_xor(out: Path) -> int:
    rows = [(0, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 0)]
    return write_csv(out / "xor.csv", ("x1", "x2", "y"), rows)


def make_iris(out: Path) -> int:
    from sklearn.datasets import load_iris

    bunch = load_iris()
    labels = [str(bunch.target_names[t]) for t in bunch.target]
    return write_csv(out / "iris.csv", (*IRIS_COLUMNS, "species"), _labelled_rows(bunch.data, labels))


def make_breast_cancer(out: Path) -> int:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    header = [str(name).replace(" ", "_") for name in bunch.feature_names] + ["diagnosis"]
    labels = [str(bunch.target_names[t]) for t in bunch.target]
    return write_csv(out / "breast_cancer.csv", header, _labelled_rows(bunch.data, labels))


def make_digits(out: Path) -> int:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    header = [f"p{i}" for i in range(bunch.data.shape[1])] + ["digit"]
    rows = [[*map(int, x), int(t)] for x, t in zip(bunch.data, bunch.target)]
    return write_csv(out / "digits.csv", header, rows)


def make_diabetes(out: Path) -> int:
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes(scaled=False)
    assert tuple(bunch.feature_names) == DIABETES_COLUMNS, bunch.feature_names
    rows = _labelled_rows(bunch.data, [float(t) for t in bunch.target])
    return write_csv(out / "diabetes.csv", (*DIABETES_COLUMNS, "progression"), rows)


def _mnist1d_arrays() -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset  # not get_dataset: it downloads

    args = get_dataset_args()
    n_train = int(args.num_samples * args.train_split)
    if (n_train, args.num_samples - n_train) != (MNIST1D_TRAIN, MNIST1D_TEST):
        raise SystemExit(f"mnist1d defaults changed: {args.num_samples} samples, split {args.train_split}")
    d = make_dataset(args)  # seeds NumPy's global RNG from args.seed
    return {
        "X": np.ascontiguousarray(d["x"], dtype=np.float32),
        "y": np.asarray(d["y"], dtype=np.int64),
        "X_test": np.ascontiguousarray(d["x_test"], dtype=np.float32),
        "y_test": np.asarray(d["y_test"], dtype=np.int64),
    }


def make_mnist1d(out: Path) -> int:
    arrays = _mnist1d_arrays()
    again = _mnist1d_arrays()
    if any(not np.array_equal(arrays[k], again[k]) for k in arrays):
        raise SystemExit("mnist1d generator is not deterministic")
    assert arrays["X"].shape == (MNIST1D_TRAIN, 40) and arrays["X_test"].shape == (MNIST1D_TEST, 40)
    write_npz(out / "mnist1d.npz", arrays)
    return len(arrays["y"]) + len(arrays["y_test"])


MAKERS = {
    "xor": make_xor,
    "iris": make_iris,
    "breast_cancer": make_breast_cancer,
    "digits": make_digits,
    "diabetes": make_diabetes,
    "mnist1d": make_mnist1d,
}


def main(out: Path = HERE) -> None:
    for name, make in MAKERS.items():
        print(f"{name}: {make(out)} rows")


if __name__ == "__main__":
    main()
