"""Wall time of `nnctl crossval` with one worker process against several, in one script.

Runs the whole command (start-up, data loading, the k fold trainings, the final model)
as a subprocess for each worker count, interleaved (1 2 1 2 ...) and repeated, and
reports the median seconds, the speed-up of each count over one worker (median of the
per-round ratios), and whether the cross-validation results are identical.

    python benchmarks/crossval_speed.py                      # digits, 10 folds, 1 vs 2 workers
    python benchmarks/crossval_speed.py --repeats 3 --workers 1,2
    python benchmarks/crossval_speed.py --config configs/iris.yaml --folds 5

With several workers the final model trains beside the folds (see README, crossval
*Speed-up*); what remains serial is start-up, the data checks and recording the final
run. The figures are only as good as the cores are idle.
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_once(config: str, folds: int, workers: int, runs_dir: str) -> tuple[float, dict]:
    """Seconds of one `nnctl crossval ... --json` and the cv summary it printed (which holds
    the seconds of its phases: checks, folds, final model)."""
    command = [sys.executable, "-m", "nnctl", "crossval", config, "--folds", str(folds),
               "--workers", str(workers), "--runs-dir", runs_dir, "--json"]
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stderr}")
    return seconds, json.loads(proc.stdout)


def comparable(cv: dict) -> dict:
    """The summary without what names the run."""
    cv = json.loads(json.dumps(cv))
    for doc in (cv, cv["final"]):
        doc.pop("run_id", None)
    cv["final"].pop("run_dir", None)
    cv.pop("seconds", None)
    return cv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/digits.yaml")
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts; the first is the baseline")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    times: dict[int, list[float]] = {w: [] for w in counts}
    fold_times: dict[int, list[float]] = {w: [] for w in counts}
    results: dict[int, dict] = {}
    print(f"{args.config}: {args.folds}-fold crossval, workers {counts}, {args.repeats} round(s), "
          f"{os.cpu_count()} cores", file=sys.stderr)
    with tempfile.TemporaryDirectory() as runs_dir:
        for r in range(args.repeats):
            for w in counts:
                seconds, cv = run_once(args.config, args.folds, w, runs_dir)
                times[w].append(seconds)
                fold_times[w].append(cv["seconds"]["folds"])
                results[w] = comparable(cv)
                print(f"round {r + 1} workers {w}: {seconds:.2f} s (folds {cv['seconds']['folds']:.2f} s, "
                      f"final model {cv['seconds']['final']:.2f} s)", file=sys.stderr, flush=True)
    base = counts[0]
    print(f"| workers | command s, median (min-max) | speed-up over {base} | folds s, median | folds speed-up | same results |")
    print("|---|---|---|---|---|---|")
    for w in counts:
        ratios = [b / t for b, t in zip(times[base], times[w])]
        fold_ratios = [b / t for b, t in zip(fold_times[base], fold_times[w])]
        print(f"| {w} | {statistics.median(times[w]):.2f} ({min(times[w]):.2f}-{max(times[w]):.2f}) "
              f"| {statistics.median(ratios):.2f}x | {statistics.median(fold_times[w]):.2f} "
              f"| {statistics.median(fold_ratios):.2f}x | {'yes' if results[w] == results[base] else 'NO'} |")


if __name__ == "__main__":
    main()
