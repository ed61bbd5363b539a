"""Charts drawn on the server as inline SVG: no chart library, no script, nothing from a CDN.

This module only computes geometry; the template writes the SVG, so every label goes through
Jinja's escaping like any other text on the page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from suggester.records.insights import DailyTypes

# Okabe–Ito: told apart by colour-blind readers too; grey is kept for "other".
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442")
OTHER_COLOUR = "#9aa3b2"
MAX_X_LABELS = 12


@dataclass(frozen=True, kw_only=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    label: str  # tooltip


@dataclass(frozen=True, kw_only=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True, kw_only=True)
class LegendItem:
    label: str
    colour: str
    total: int


@dataclass(frozen=True, kw_only=True)
class StackedChart:
    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int
    bars: list[Bar]
    y_ticks: list[Tick]
    x_labels: list[Tick]
    legend: list[LegendItem]

    @property
    def empty(self) -> bool:
        return not self.bars


def nice_scale(value: int) -> tuple[int, int]:
    """An axis maximum ≥ value and a tick step of 1, 2 or 5 × 10ⁿ giving at most 5 ticks."""
    if value <= 0:
        return 1, 1
    raw = value / 5
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return int(math.ceil(value / step) * step), int(step)


def stacked_bars(days: Sequence[date], series: Sequence[tuple[str, Sequence[int], str]], *,
                 width: int = 960, height: int = 260) -> StackedChart:
    """Daily bars stacked by series; `series` is (label, one count per day, colour)."""
    left, top, right, bottom = 40, 10, width - 10, height - 28
    totals = [sum(values[i] for _, values, _ in series) for i in range(len(days))]
    top_value, step = nice_scale(max(totals, default=0))
    slot = (right - left) / max(len(days), 1)
    scale = (bottom - top) / top_value
    bars = []
    for i, day in enumerate(days):
        base = float(bottom)
        for label, values, colour in series:
            if values[i]:
                bar_height = values[i] * scale
                base -= bar_height
                bars.append(Bar(x=left + i * slot + slot * 0.15, y=base, width=slot * 0.7,
                                height=bar_height, colour=colour,
                                label=f"{day.month}월 {day.day}일 · {label} {values[i]}건"))
    y_ticks = [Tick(position=bottom - v * scale, label=str(v))
               for v in range(0, top_value + 1, step)]
    every = max(1, math.ceil(len(days) / MAX_X_LABELS))
    x_labels = [Tick(position=left + (i + 0.5) * slot, label=f"{day.month}/{day.day}")
                for i, day in enumerate(days) if (len(days) - 1 - i) % every == 0]
    legend = [LegendItem(label=label, colour=colour, total=sum(values))
              for label, values, colour in series if sum(values)]
    return StackedChart(width=width, height=height, left=left, top=top, right=right,
                        bottom=bottom, bars=bars, y_ticks=y_ticks, x_labels=x_labels,
                        legend=legend)


def daily_types_chart(daily: DailyTypes, *, width: int = 960, height: int = 260) -> StackedChart:
    """Daily inquiries stacked by type; the types past the palette are drawn together as 기타."""
    shown, rest = daily.categories[:len(PALETTE)], daily.categories[len(PALETTE):]
    series = [(c, daily.series(c), colour) for c, colour in zip(shown, PALETTE, strict=False)]
    if rest:
        other = [sum(values) for values in zip(*(daily.series(c) for c in rest), strict=True)]
        series.append(("기타", other, OTHER_COLOUR))
    return stacked_bars(daily.days, series, width=width, height=height)
