"""Reading speed and memory: nnctl's load (as ``nnctl validate`` does it) against pandas.

Writes synthetic files (20 numeric columns rounded to 4 decimals, one text column of 8
categories, a text target of 3 classes) to a temporary folder, then for each size and
format runs, each in its own process and interleaved over ``--repeats`` rounds:

- ``nnctl validate`` on a spec whose ``data.source`` is the file (start-up, read, cell
  checks, split, one-hot, scaling: the whole command);
- ``pandas.read_csv`` / ``pandas.read_parquet`` of the same file (start-up and import too).

It reports the median wall seconds and the peak resident memory (RSS, MB) of each
process (from ``wait4``), and nnctl's ratios to pandas. The files are deleted at the end.

    python benchmarks/read_speed.py                       # CSV 100k and 1M rows, Parquet 1M
    python benchmarks/read_speed.py --sizes 100000 --repeats 3 --keep /tmp/bench
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
N_NUMERIC = 20

SPEC = """\
name: read-speed
data: {{source: {source}, target: label}}
model: {{layers: [{{units: 8}}]}}
training: {{epochs: 1}}
"""

PANDAS = {"csv": "import pandas, sys; pandas.read_csv(sys.argv[1])",
          "parquet": "import pandas, sys; pandas.read_parquet(sys.argv[1])"}


def write_files(folder: Path, rows: int, formats: list[str], seed: int = 0) -> dict[str, Path]:
    """The synthetic table as CSV and / or Parquet in ``folder``; written with pyarrow."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    columns = {f"x{j}": np.round(rng.normal(j % 5, 1 + j % 3, rows), 4) for j in range(N_NUMERIC)}
    columns["color"] = np.array(["red", "green", "blue", "cyan", "teal", "plum", "gold", "gray"])[
        rng.integers(0, 8, rows)]
    columns["label"] = np.array(["alpha", "beta", "gamma"])[rng.integers(0, 3, rows)]
    table = pa.table(columns)
    paths = {}
    for fmt in formats:
        path = folder / f"rows{rows}.{fmt}"
        if fmt == "csv":
            pa_csv.write_csv(table, path, pa_csv.WriteOptions(quoting_style="none"))
        else:
            pq.write_table(table, path)
        paths[fmt] = path
    return paths


def measure(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one process running ``command``."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {proc.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024  # Linux: kilobytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="CSV row counts")
    parser.add_argument("--parquet-sizes", default="1000000", help="Parquet row counts ('' for none)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", help="write the files here and keep them")
    args = parser.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="nnctl-read-"))
    folder.mkdir(parents=True, exist_ok=True)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s} | {int(s) for s in args.parquet_sizes.split(",") if s})
    try:
        print(f"{'file':>22} {'MB':>6} {'reader':>8} {'wall s':>7} {'peak MB':>8}   nnctl/pandas")
        for rows in sizes:
            formats = [f for f, chosen in (("csv", args.sizes), ("parquet", args.parquet_sizes))
                       if str(rows) in chosen.split(",")]
            for fmt, path in write_files(folder, rows, formats).items():
                spec = folder / f"spec_{fmt}_{rows}.yaml"
                spec.write_text(SPEC.format(source=path))
                commands = {"nnctl": [sys.executable, "-m", "nnctl", "validate", str(spec)],
                            "pandas": [sys.executable, "-c", PANDAS[fmt], str(path)]}
                results: dict[str, list[tuple[float, float]]] = {k: [] for k in commands}
                for _ in range(args.repeats):
                    for name, command in commands.items():
                        results[name].append(measure(command))
                median = {k: (statistics.median(r[0] for r in v), max(r[1] for r in v)) for k, v in results.items()}
                size_mb = path.stat().st_size / 2**20
                for name, (wall, rss) in median.items():
                    ratio = ""
                    if name == "nnctl":
                        ratio = f"   {wall / median['pandas'][0]:.2f}x time, {rss / median['pandas'][1]:.2f}x memory"
                    print(f"{path.name:>22} {size_mb:6.0f} {name:>8} {wall:7.2f} {rss:8.0f}{ratio}")
                if not args.keep:
                    path.unlink()
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
