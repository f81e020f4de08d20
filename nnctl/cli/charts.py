"""Line charts drawn with characters, for the terminal: each series is a marker at each
of its points on a width × height grid, with the y range (linear or log10) on the left."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

COLOURS = ("cyan", "magenta", "yellow", "green", "blue", "red", "bright_cyan", "bright_magenta", "bright_yellow",
           "bright_green", "bright_blue", "bright_red")


@dataclass(frozen=True)
class Series:
    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    marker: str
    colour: str = "white"


def _fmt(v: float) -> str:
    return f"{v:.3g}" if 1e-3 <= abs(v) < 1e4 or v == 0 else f"{v:.1e}"


def line_chart(title: str, series: Sequence[Series], width: int = 64, height: int = 14, log: bool = False,
               rich: bool = False) -> list[str]:
    """The chart as lines of text (with rich colour markup when ``rich``); points that are
    not finite (or not positive on a log scale) are left out."""
    pts = [[(x, y) for x, y in zip(s.xs, s.ys) if math.isfinite(y) and (y > 0 or not log)] for s in series]
    every = [p for ps in pts for p in ps]
    if not every:
        return [title, "  (no values to draw)"]
    tr = (lambda v: math.log10(v)) if log else (lambda v: v)
    x_lo, x_hi = min(p[0] for p in every), max(p[0] for p in every)
    y_lo, y_hi = min(tr(p[1]) for p in every), max(tr(p[1]) for p in every)
    if y_hi == y_lo:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    if x_hi == x_lo:
        x_hi = x_lo + 1
    grid = [[" "] * width for _ in range(height)]
    colour = [[""] * width for _ in range(height)]
    for s, ps in zip(series, pts):
        for x, y in ps:
            col = round((x - x_lo) / (x_hi - x_lo) * (width - 1))
            row = height - 1 - round((tr(y) - y_lo) / (y_hi - y_lo) * (height - 1))
            grid[row][col] = s.marker
            colour[row][col] = s.colour
    untr = (lambda v: 10**v) if log else (lambda v: v)
    labels = {0: _fmt(untr(y_hi)), height // 2: _fmt(untr((y_lo + y_hi) / 2)), height - 1: _fmt(untr(y_lo))}
    pad = max(len(v) for v in labels.values())
    lines = [f"{title}{' (log scale)' if log else ''}"]
    for r in range(height):
        cells = "".join(_cell(grid[r][c], colour[r][c], rich) for c in range(width))
        lines.append(f"{labels.get(r, ''):>{pad}} │{cells}")
    lines.append(" " * pad + " └" + "─" * width)
    left, right = f"{x_lo:g}", f"{x_hi:g}"
    lines.append(" " * (pad + 2) + left + " " * max(1, width - len(left) - len(right) - 6) + right + " epoch")
    legend = "  ".join(f"{_cell(s.marker, s.colour, rich)} {s.label}" for s in series)
    lines.append(" " * (pad + 2) + legend)
    return lines


def _cell(ch: str, colour: str, rich: bool) -> str:
    if rich and ch != " " and colour:
        return f"[{colour}]{_escape(ch)}[/{colour}]"
    return _escape(ch) if rich else ch


def _escape(ch: str) -> str:
    return "\\[" if ch == "[" else ch
