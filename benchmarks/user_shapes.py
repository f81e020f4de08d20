"""Whole-fit speed on the shapes users train, each with a 10% validation split.

Every measurement is one whole fit in a fresh process: the engine's ``fit`` (with the
validation pass after each epoch and the gradient-norm callback that ``nnctl train``
runs), timed from the call to its return, so the choice of step, importing numba and
loading its compiled kernels count.  Settings, each in its own process, interleaved
round by round:

- ``default``: as ``nnctl train`` runs it;
- ``numba0``: ``NNCTL_NUMBA=0`` (the plain NumPy step);
- ``blas1``: one BLAS thread (``OPENBLAS_NUM_THREADS=1`` and its kin);
- ``torch``: PyTorch CPU, the same network, optimizer, minibatches, dropout and the
  same validation pass (loss and accuracy of every validation row) after each epoch.

The shipped configs (``--configs``) are timed as ``nnctl train`` runs them, by the
``seconds.training`` that summary.json records, default against each switch.

    python benchmarks/user_shapes.py                  # every case, 3 rounds
    python benchmarks/user_shapes.py --cases small,mnist1d --repeats 5
    python benchmarks/user_shapes.py --configs configs/mnist1d.yaml,configs/digits.yaml

The table gives rows/s (training rows × epochs / seconds of the fit), median of the
rounds, and per-round ratios of the default to each other setting.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch_mlp  # benchmarks/torch_mlp.py: the PyTorch side (imports torch only when used)


@dataclass(frozen=True)
class Shape:
    name: str
    sizes: tuple[int, ...]
    optimizer: str
    batch: int
    rows: int  # before the 10% validation split
    epochs: int
    dropout: float = 0.0
    lr: float = 0.001


SHAPES = {
    "small": Shape("small", (64, 32, 10), "sgd", 32, 1797, 300, lr=0.01),
    "tabular": Shape("tabular", (30, 128, 128, 2), "adam", 256, 20_000, 50),
    "mnist1d": Shape("mnist1d", (40, 256, 256, 10), "adam", 64, 4000, 100, dropout=0.2),
    "wide": Shape("wide", (784, 1024, 1024, 10), "momentum", 128, 6000, 3, dropout=0.5, lr=0.01),
    "bench": Shape("bench", (784, 256, 256, 10), "adam", 128, 20_000, 10),
}
SETTINGS = ("default", "numba0", "blas1", "torch")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _data(shape: Shape):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((shape.rows, shape.sizes[0]), dtype=np.float32)
    w = rng.standard_normal((shape.sizes[0], shape.sizes[-1]), dtype=np.float32)
    y = (x @ w).argmax(axis=1)  # a learnable target
    n_val = shape.rows // 10
    return x[n_val:], y[n_val:], x[:n_val], y[:n_val]


def worker_nnctl(shape: Shape) -> dict:
    import numpy as np
    from threadpoolctl import threadpool_limits

    from nnctl.app.resources import blas_threads, core_left_for_prefetch
    from nnctl.engine.callbacks import GradientNorms
    from nnctl.engine.losses import get_loss
    from nnctl.engine.network import MLP
    from nnctl.engine.optimizers import make_optimizer
    from nnctl.engine.trainer import FitConfig, fit, step_threads

    x, y, xv, yv = _data(shape)
    k = shape.sizes[-1]
    t, tv = np.eye(k, dtype=np.float32)[y], np.eye(k, dtype=np.float32)[yv]
    hidden = len(shape.sizes) - 2
    net = MLP(shape.sizes, ["relu"] * hidden, "softmax", dropout=[0.0] + [shape.dropout] * hidden)
    net.initialize(np.random.default_rng(0), "he")
    opt = make_optimizer(shape.optimizer, net.params.size, lr=shape.lr)
    threads = step_threads(shape.sizes, shape.batch, blas_threads())  # as `nnctl train` decides
    config = FitConfig(epochs=shape.epochs, batch_size=shape.batch, lr=shape.lr,
                       prefetch=core_left_for_prefetch(threads))
    start = time.perf_counter()
    with threadpool_limits(limits=threads, user_api="blas"):
        result = fit(net, get_loss("cross_entropy", "softmax"), opt, x, t, config, np.random.default_rng(1),
                     x_val=xv, t_val=tv, callbacks=[GradientNorms()])
    seconds = time.perf_counter() - start
    return {"rows_per_second": len(x) * result.epochs / seconds, "step": f"{result.step}/{threads}t"}


def worker_torch(shape: Shape) -> dict:
    import torch

    x, y, xv, yv = _data(shape)
    xt, yt, xvt, yvt = (torch.from_numpy(a) for a in (x, y, xv, yv))
    model = torch_mlp.mlp(shape.sizes, shape.dropout)
    opt = torch_mlp.optimizer(model, shape.optimizer, shape.lr)
    lossf = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(1)
    n = len(x)
    start = time.perf_counter()
    for _ in range(shape.epochs):
        model.train()
        torch_mlp.train_epoch(model, opt, lossf, xt, yt, n, shape.batch, gen)
        model.eval()
        with torch.no_grad():
            out = model(xvt)
            float(lossf(out, yvt))
            float((out.argmax(1) == yvt).float().mean())
    seconds = time.perf_counter() - start
    return {"rows_per_second": n * shape.epochs / seconds, "step": "torch"}


def spawn_shape(setting: str, shape: Shape) -> dict | None:
    env = dict(os.environ)
    if setting == "numba0":
        env["NNCTL_NUMBA"] = "0"
    if setting == "blas1":
        env.update({var: "1" for var in THREAD_VARS})
    cmd = [sys.executable, __file__, "--worker", setting, "--cases", shape.name]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        print(f"  {shape.name} {setting} failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def spawn_config(setting: str, config: str, runs_dir: str) -> dict | None:
    env = dict(os.environ)
    if setting == "numba0":
        env["NNCTL_NUMBA"] = "0"
    if setting == "blas1":
        env.update({var: "1" for var in THREAD_VARS})
    cmd = [sys.executable, "-m", "nnctl", "train", config, "--runs-dir", runs_dir, "--json"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        print(f"  {config} {setting} failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    newest = max(Path(runs_dir).iterdir(), key=lambda p: p.stat().st_mtime)
    summary = json.loads((newest / "summary.json").read_text())
    step = summary.get("step", {})
    return {"seconds": summary["seconds"]["training"], "wall": wall,
            "step": f"{step.get('kind', '?')}/{step.get('blas_threads', '?')}t"}


def _row(label: str, results: dict[str, list[dict]], key: str, higher_better: bool) -> str:
    def med(setting):
        values = [r[key] for r in results[setting] if r is not None]
        return statistics.median(values) if values else float("nan")

    cells = [f"{med(s) / 1e3:.1f}k" if higher_better else f"{med(s):.2f}s" for s in results]
    ratios = []
    for s in results:
        if s == "default":
            continue
        pairs = [(a[key] / b[key] if higher_better else b[key] / a[key])
                 for a, b in zip(results["default"], results[s]) if a is not None and b is not None]
        ratios.append(f"{statistics.median(pairs):.2f}" if pairs else "-")
    steps = sorted({r["step"] for r in results["default"] if r is not None})
    return f"| {label} | {' | '.join(cells)} | {' | '.join(ratios)} | {','.join(steps)} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(SHAPES), help="comma list of " + ", ".join(SHAPES))
    parser.add_argument("--configs", default="", help="comma list of spec files to time as `nnctl train` runs them")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma list of " + ", ".join(SETTINGS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shapes = [SHAPES[c] for c in args.cases.split(",") if c]
    settings = [s for s in args.settings.split(",") if s]
    if args.worker:
        shape = shapes[0]
        print(json.dumps(worker_torch(shape) if args.worker == "torch" else worker_nnctl(shape)))
        return
    if "default" not in settings:
        settings.insert(0, "default")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; {args.repeats} interleaved rounds, medians")
    if shapes:
        print("\n| case | " + " | ".join(f"{s} rows/s" for s in settings) + " | "
              + " | ".join(f"default ÷ {s}" for s in settings[1:]) + " | default step |")
        print("|---" * (2 * len(settings) + 1) + "|")
        for shape in shapes:
            results: dict[str, list] = {s: [] for s in settings}
            for _ in range(args.repeats):
                for s in settings:
                    results[s].append(spawn_shape(s, shape))
            label = f"{shape.name} {'-'.join(map(str, shape.sizes))} {shape.optimizer} b{shape.batch}"
            if shape.dropout:
                label += f" dropout {shape.dropout}"
            print(_row(label, results, "rows_per_second", True), flush=True)
    configs = [c for c in args.configs.split(",") if c]
    if configs:
        config_settings = [s for s in settings if s != "torch"]
        print("\n| config | " + " | ".join(f"{s} training s" for s in config_settings) + " | "
              + " | ".join(f"{s} ÷ default" for s in config_settings[1:]) + " | default step |")
        print("|---" * (2 * len(config_settings) + 1) + "|")
        with tempfile.TemporaryDirectory() as runs_dir:
            for config in configs:
                results = {s: [] for s in config_settings}
                for _ in range(args.repeats):
                    for s in config_settings:
                        results[s].append(spawn_config(s, config, runs_dir))
                print(_row(config, results, "seconds", False), flush=True)


if __name__ == "__main__":
    main()
