"""Training speed of nnctl's engine against PyTorch CPU and scikit-learn, side by side.

Each measurement runs in its own worker process (so no two BLAS libraries share a
process), the libraries are interleaved (A B C A B C ...) and repeated, and the
table reports the median samples/s with (min-max), the ratios of nnctl to each other
library computed per interleaved round, and the GEMM-only ceiling: the 8 matrix
products of one training step (3 forward, 3 weight gradients, 2 backpropagated
deltas) at the same shapes, timed alone.  BLAS threads are set per worker, and
1-thread and default-thread figures are reported apart.  With the default threads, a
short probe before and after each measurement tells which of this machine's two
2-thread modes it ran in (``worker_mode``), and the ratios are also given over the
rounds where both measurements ran wholly in the fast mode, or wholly in the slow one.

    python benchmarks/train_speed.py            # full run (several minutes)
    python benchmarks/train_speed.py --quick    # a small version in seconds
    python benchmarks/train_speed.py --threads 1 --batches 32,128

Needs the `bench` extra for the references (torch, scikit-learn, threadpoolctl); a
library that is not installed is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import torch_mlp  # benchmarks/torch_mlp.py: the PyTorch side (imports torch only when used)

BIG = (784, 256, 256, 10)
SMALL = (64, 32, 10)


@dataclass(frozen=True)
class Case:
    net: str  # "big" | "small"
    batch: int
    optimizer: str  # "adam" | "sgd"

    @property
    def sizes(self) -> tuple[int, ...]:
        return BIG if self.net == "big" else SMALL

    @property
    def label(self) -> str:
        return f"{self.net} {'-'.join(map(str, self.sizes))} {self.optimizer} batch {self.batch}"


# ----------------------------------------------------------------------------- workers
def _data(sizes: tuple[int, ...], rows: int):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], rows)
    return x, y


def _rows(case: Case, quick: bool) -> int:
    if case.net == "small":
        return 1797
    return 6000 if quick else 60000


def _time_epochs(step_epoch, seconds: float) -> float:
    """Run whole epochs until ``seconds`` have passed (at least one); rows per second."""
    done, start = 0, time.perf_counter()
    while True:
        done += step_epoch()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def worker_nnctl(case: Case, rows: int, seconds: float) -> float:
    import numpy as np

    from nnctl.app.resources import blas_threads, core_left_for_prefetch
    from nnctl.engine.callbacks import GradientNorms
    from nnctl.engine.losses import get_loss
    from nnctl.engine.network import MLP
    from nnctl.engine.optimizers import make_optimizer
    from threadpoolctl import threadpool_limits

    from nnctl.engine.trainer import FitConfig, fit, step_threads

    x, y = _data(case.sizes, rows)
    t = np.zeros((rows, case.sizes[-1]), np.float32)
    t[np.arange(rows), y] = 1
    net = MLP(case.sizes, ["relu"] * (len(case.sizes) - 2), "softmax")
    net.initialize(np.random.default_rng(0), "he")
    lr = 0.001 if case.optimizer == "adam" else 0.01
    opt = make_optimizer(case.optimizer, net.params.size, lr=lr)
    loss = get_loss("cross_entropy", "softmax")
    rng = np.random.default_rng(1)
    limit = _limit(case, rows)
    xs, ts = x[:limit], t[:limit]

    threads = step_threads(case.sizes, case.batch, blas_threads())  # as `nnctl train` decides
    prefetch = core_left_for_prefetch(threads)

    def run(epochs: int) -> float:
        config = FitConfig(epochs=epochs, batch_size=case.batch, lr=lr, prefetch=prefetch)
        start = time.perf_counter()
        with threadpool_limits(limits=threads, user_api="blas"):
            fit(net, loss, opt, xs, ts, config, rng, callbacks=[GradientNorms()])
        return time.perf_counter() - start

    # One fit() call runs many epochs, as `nnctl train` does: time one epoch (also the
    # warm-up, with numba's kernels loaded as a long fit loads them), then as many epochs
    # as fill the measuring time.
    from nnctl.engine import accel

    if accel.enabled():
        accel.self_check("float32")
    accel.FIXED_COST = 0.0  # the step of a long fit, also for the short timed ones
    epochs = max(1, int(seconds / run(1)))
    return epochs * limit / run(epochs)


def worker_torch(case: Case, rows: int, seconds: float, fused: bool) -> float:
    import torch

    x, y = _data(case.sizes, rows)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model = torch_mlp.mlp(case.sizes)
    opt = torch_mlp.optimizer(model, case.optimizer, 0.001 if case.optimizer == "adam" else 0.01, fused)
    lossf = torch.nn.CrossEntropyLoss()
    limit = _limit(case, rows)
    gen = torch.Generator().manual_seed(1)

    def epoch() -> int:
        torch_mlp.train_epoch(model, opt, lossf, xt, yt, limit, case.batch, gen)
        return limit

    epoch()
    return _time_epochs(epoch, seconds)


def worker_sklearn(case: Case, rows: int, seconds: float) -> float:
    import warnings

    from sklearn.neural_network import MLPClassifier

    x, y = _data(case.sizes, rows)
    limit = _limit(case, rows)
    model = MLPClassifier(
        hidden_layer_sizes=case.sizes[1:-1], activation="relu", solver=case.optimizer,
        learning_rate_init=0.001 if case.optimizer == "adam" else 0.01, batch_size=case.batch,
        max_iter=1, shuffle=True, random_state=0, tol=0.0, momentum=0.0,
    )
    warnings.filterwarnings("ignore")

    def epoch() -> int:
        model.partial_fit(x[:limit], y[:limit], classes=list(range(case.sizes[-1])))
        return limit

    epoch()
    return _time_epochs(epoch, seconds)


def worker_gemm(case: Case, rows: int, seconds: float) -> float:
    """The 8 matrix products of one step at the case's shapes, nothing else."""
    import numpy as np

    s, b = case.sizes, case.batch
    rng = np.random.default_rng(0)
    f = lambda *shape: rng.standard_normal(shape, dtype=np.float32)  # noqa: E731
    ws = [f(s[i], s[i + 1]) for i in range(len(s) - 1)]
    acts = [f(b, n) for n in s]
    deltas = [f(b, n) for n in s[1:]]
    grads = [np.empty_like(w) for w in ws]
    steps_per_epoch = max(rows // b, 1)

    def epoch() -> int:
        for _ in range(steps_per_epoch):
            for i, w in enumerate(ws):
                np.matmul(acts[i], w, out=acts[i + 1])
            for i in range(len(ws) - 1, -1, -1):
                np.matmul(acts[i].T, deltas[i], out=grads[i])
                if i > 0:
                    np.matmul(deltas[i], ws[i].T, out=deltas[i - 1])
        return steps_per_epoch * b

    epoch()
    return _time_epochs(epoch, seconds)


def worker_mode() -> float:
    """How much faster one product (128×784 by 784×256) runs on the default BLAS threads
    than on one: about 1.8 in this machine's fast 2-thread mode, 1.4 in its slow one."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a, w = rng.standard_normal((128, 784), dtype=np.float32), rng.standard_normal((784, 256), dtype=np.float32)
    out = np.empty((128, 256), np.float32)

    def rate() -> float:
        np.matmul(a, w, out=out)
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < 0.15:
            np.matmul(a, w, out=out)
            done += 1
        return done / (time.perf_counter() - start)

    default = rate()
    with threadpool_limits(1):
        one = rate()
    return default / one


MODE_SPLIT = 1.6
"""A default-thread product at least this much faster than a 1-thread one: the fast mode."""


def _limit(case: Case, rows: int) -> int:
    # Per-example training is slow: time it over fewer rows per pass.
    return min(rows, 2000) if case.batch == 1 else rows


def run_worker(lib: str, case: Case, rows: int, seconds: float) -> float:
    if lib == "nnctl":
        return worker_nnctl(case, rows, seconds)
    if lib == "nnctl_plain":  # the plain NumPy step, for comparison
        os.environ["NNCTL_NUMBA"] = "0"
        return worker_nnctl(case, rows, seconds)
    if lib == "torch_fused":
        return worker_torch(case, rows, seconds, fused=True)
    if lib == "torch":
        return worker_torch(case, rows, seconds, fused=False)
    if lib == "sklearn":
        return worker_sklearn(case, rows, seconds)
    if lib == "gemm":
        return worker_gemm(case, rows, seconds)
    if lib == "mode":
        return worker_mode()
    raise ValueError(lib)


# ----------------------------------------------------------------------------- driver
def available(lib: str) -> bool:
    module = {"torch": "torch", "torch_fused": "torch", "sklearn": "sklearn", "threadpoolctl": "threadpoolctl"}.get(lib)
    if module is None:
        return True
    import importlib.util

    return importlib.util.find_spec(module) is not None


def spawn(lib: str, case: Case, threads: int | None, quick: bool, seconds: float) -> float | None:
    env = dict(os.environ)
    if threads is not None:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    cmd = [sys.executable, __file__, "--worker", lib, "--net", case.net, "--batch", str(case.batch),
           "--optimizer", case.optimizer, "--seconds", str(seconds)]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    if quick:
        cmd.append("--quick")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        print(f"  {lib} failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout)["samples_per_second"]


def blas_info(threads: int | None) -> str:
    env = dict(os.environ)
    if threads is not None:
        env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(threads)
    code = ("import numpy, json\ntry:\n from threadpoolctl import threadpool_info\n"
            " print(json.dumps([(i['internal_api'], i.get('version'), i['num_threads'], i.get('architecture')) "
            "for i in threadpool_info()]))\nexcept ImportError:\n print('threadpoolctl not installed')")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.strip()


def cases(args) -> list[Case]:
    out = []
    for b in args.batches:
        out.append(Case("big", b, "sgd" if b == 1 else "adam"))
    for b in args.small_batches:
        out.append(Case("small", b, "sgd"))
    return out


def measure(case: Case, threads: int | None, args) -> dict[str, list[float]]:
    libs = ["nnctl", "nnctl_plain", "torch_fused", "torch", "sklearn", "gemm"]
    if case.net == "small":
        libs.remove("nnctl_plain")  # small networks take the plain step anyway
    if case.optimizer == "sgd":
        libs.remove("torch_fused")  # fused applies to Adam only
    if case.batch == 1 or case.net == "small":
        libs.remove("gemm")
    libs = [lib for lib in libs if available(lib) and (not args.libs or lib in args.libs)]
    results: dict[str, list[float]] = {lib: [] for lib in libs}
    # With several threads, tell the machine's 2-thread mode before and after each measurement.
    probing = threads is None and (os.cpu_count() or 1) > 1 and available("threadpoolctl")
    modes: dict[str, list[str]] = {lib: [] for lib in libs}

    def mode() -> str:
        speedup = spawn("mode", case, threads, args.quick, args.seconds)
        return "?" if speedup is None else "fast" if speedup >= MODE_SPLIT else "slow"

    before = mode() if probing else "?"
    for _ in range(args.repeats):
        for lib in libs:
            value = spawn(lib, case, threads, args.quick, args.seconds)
            results[lib].append(value if value is not None else float("nan"))
            after = mode() if probing else "?"
            modes[lib].append(before if before == after else "mixed")
            before = after
    results["_modes"] = modes  # type: ignore[assignment]
    return results


def report(case: Case, threads: int | None, results: dict[str, list[float]]) -> None:
    modes: dict[str, list[str]] = results.pop("_modes", {})  # type: ignore[assignment]

    def cell(values):
        good = [v for v in values if v == v]
        if not good:
            return "-"
        return f"{statistics.median(good) / 1e3:8.1f}k ({min(good) / 1e3:.1f}-{max(good) / 1e3:.1f})"

    def ratio(other, mode=None):
        pairs = [a / b for i, (a, b) in enumerate(zip(results["nnctl"], results[other]))
                 if a == a and b == b and b > 0
                 and (mode is None or modes["nnctl"][i] == modes[other][i] == mode)]
        if not pairs:
            return "-"
        return f"{statistics.median(pairs):.2f}x" + (f" ({len(pairs)} rounds)" if mode else "")

    label = "default threads" if threads is None else f"{threads} thread{'s' if threads > 1 else ''}"
    print(f"\n{case.label}, {label}: samples/s, median (min-max) of {len(results['nnctl'])} interleaved rounds")
    for lib, values in results.items():
        extra = ""
        if lib != "nnctl" and lib != "gemm":
            extra = f"   nnctl / {lib} = {ratio(lib)}"
        if lib == "gemm":
            extra = f"   nnctl share of GEMM-only ceiling = {ratio(lib).rstrip('x')}"
        print(f"  {lib:<12} {cell(values)}{extra}")
    if len(results) > 1 and any(m != "?" for labels in modes.values() for m in labels):
        # Ratios of rounds in which both measurements ran wholly in the same 2-thread mode.
        for mode in ("fast", "slow"):
            parts = []
            for lib in results:
                if lib == "nnctl":
                    continue
                name = "share of ceiling" if lib == "gemm" else f"/ {lib}"
                parts.append(f"{name} {ratio(lib, mode).replace('x (', ' (') if lib == 'gemm' else ratio(lib, mode)}")
            print(f"  {mode}-mode rounds: nnctl {', '.join(parts)}")
        print("  modes (nnctl): " + " ".join(modes.get("nnctl", [])))
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, one repeat, short timings")
    parser.add_argument("--threads", type=str, default="1,default", help="comma list of BLAS thread counts; 'default' = library default")
    parser.add_argument("--batches", type=lambda s: [int(v) for v in s.split(",") if v], default=[1, 32, 128, 512])
    parser.add_argument("--small-batches", type=lambda s: [int(v) for v in s.split(",") if v], default=[1, 32])
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None, help="timed seconds per measurement")
    parser.add_argument("--libs", type=lambda s: [v for v in s.split(",") if v], default=[],
                        help="comma list of the measurements to run (nnctl, nnctl_plain = NNCTL_NUMBA=0, torch_fused, torch, sklearn, gemm); default all")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--net", default="big", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument("--optimizer", default="adam", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        case = Case(args.net, args.batch, args.optimizer)
        threads = args.threads if args.threads not in ("1,default", "default") else None
        if threads is not None and args.worker.startswith("torch"):
            import torch

            torch.set_num_threads(int(threads))
        value = run_worker(args.worker, case, _rows(case, args.quick), args.seconds)
        print(json.dumps({"samples_per_second": value}))
        return

    args.repeats = args.repeats or (1 if args.quick else 5)
    args.seconds = args.seconds or (0.5 if args.quick else 2.0)
    if args.quick:
        args.batches, args.small_batches = [32, 128], [32]
    thread_list = [None if t == "default" else int(t) for t in args.threads.split(",")]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    for threads in thread_list:
        print(f"BLAS ({'default' if threads is None else threads} threads): {blas_info(threads)}")
    for threads in thread_list:
        for case in cases(args):
            report(case, threads, measure(case, threads, args))


if __name__ == "__main__":
    main()
