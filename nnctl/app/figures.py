"""PNG figures with matplotlib (the optional extra ``nnctl[plot]``): learning curves,
per-layer gradient norms on a log scale, a confusion matrix.  matplotlib is imported
only here, when a figure is asked for; files are written atomically."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Sequence

from nnctl.app.curves import Curves
from nnctl.app.errors import NnctlError, UsageError
from nnctl.app.runs import atomic_write_bytes

FIGSIZE = (8.0, 5.0)  # inches
DPI = 100  # so a figure is 800 x 500 pixels


class MissingExtra(NnctlError):
    """An optional dependency is not installed."""

    kind = "missing_dependency"


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise MissingExtra("writing PNG files needs matplotlib, which is not installed",
                           hint="pip install 'nnctl[plot]'  (or: pip install matplotlib)") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    if path.suffix.lower() != ".png":
        raise UsageError(f"--out {path}: only .png files are written")
    if not path.parent.is_dir():
        raise UsageError(f"--out {path}: folder {path.parent} does not exist")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    atomic_write_bytes(path, buf.getvalue(), shared=True)


def learning_curves_png(runs: Sequence[Curves], path: Path) -> None:
    """Loss (left) and accuracy or RMSE (right) per epoch: solid training, dashed validation."""
    plt = _pyplot()
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=FIGSIZE, layout="constrained")
    try:
        for i, c in enumerate(runs):
            colour = f"C{i}"
            label = c.run_id if len(runs) > 1 else ""
            for ax, key in ((ax_loss, "loss"), (ax_metric, c.metric)):
                for split, style in (("train", "-"), ("val", "--")):
                    ys = c.series.get(f"{split}_{key}")
                    if ys and any(math.isfinite(v) for v in ys):
                        ax.plot(c.epochs, ys, style, color=colour,
                                label=f"{label} {'training' if split == 'train' else 'validation'}".strip())
        ax_loss.set(title="loss", xlabel="epoch")
        metrics = sorted({c.metric for c in runs})
        ax_metric.set(title=" / ".join(metrics), xlabel="epoch")
        for ax in (ax_loss, ax_metric):
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
        fig.suptitle(runs[0].name if len(runs) == 1 else "learning curves")
        _save(fig, path)
    finally:
        plt.close(fig)


def gradient_norms_png(runs: Sequence[Curves], path: Path) -> None:
    """‖∂L/∂W_l‖ per epoch for every layer l, log scale, one panel per run."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=FIGSIZE, layout="constrained", squeeze=False, sharey=True)
    try:
        for ax, c in zip(axes[0], runs):
            layers = c.grad_layers
            cmap = plt.get_cmap("viridis")
            for j, key in enumerate(layers):
                ys = [v if v > 0 else math.nan for v in c.series[key]]
                ax.plot(c.epochs, ys, color=cmap(j / max(len(layers) - 1, 1)), label=key.split(".")[1])
            ax.set_yscale("log")
            ax.set(title=c.name, xlabel="epoch")
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize="x-small", ncol=2)
        axes[0][0].set_ylabel("gradient norm ‖∂L/∂W‖ (mean over the epoch's steps)")
        _save(fig, path)
    finally:
        plt.close(fig)


def confusion_png(matrix: list[list[int]], classes: Sequence[str], path: Path, title: str) -> None:
    """The confusion matrix as a heat map, counts in the cells (rows true, columns predicted)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE, layout="constrained")
    try:
        im = ax.imshow(matrix, cmap="Blues")
        n = len(classes)
        ax.set_xticks(range(n), labels=list(classes), rotation=45 if n > 6 else 0)
        ax.set_yticks(range(n), labels=list(classes))
        ax.set(xlabel="predicted", ylabel="true", title=title)
        top = max((max(r) for r in matrix), default=0)
        for i, row in enumerate(matrix):
            for j, v in enumerate(row):
                ax.text(j, i, str(v), ha="center", va="center", color="white" if v > top / 2 else "black",
                        fontsize="small")
        fig.colorbar(im, ax=ax)
        _save(fig, path)
    finally:
        plt.close(fig)
