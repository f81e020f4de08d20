"""nnctl: train multilayer perceptrons from YAML experiment specs."""

__version__ = "0.1.0"


def load_run(path_or_id, runs_dir=None, checkpoint: str = "best.npz"):
    """A saved run, ready to predict on raw feature rows.

    ``path_or_id`` is a run directory, or a run id / unique prefix / ``latest`` in
    ``runs_dir`` (default ``$NNCTL_RUNS_DIR`` or ./runs).  The object returned has
    ``predict(X)`` (class labels, or values in the target's units) and ``predict_proba(X)``
    (one column per class), where X is a 2-D array of raw feature rows with the training
    columns in order, or a mapping / DataFrame from column name to values.
    """
    from nnctl.app.prediction import load_run as _load_run

    return _load_run(path_or_id, runs_dir, checkpoint)
