"""Server-drawn SVG chart geometry."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from web.charts import nice_scale, stacked_bars


@pytest.mark.parametrize(("value", "scale"), [
    (0, (1, 1)), (3, (3, 1)), (7, (8, 2)), (13, (15, 5)), (100, (100, 20)), (101, (150, 50)),
])
def test_nice_scale(value, scale):
    assert nice_scale(value) == scale


def test_bars_stack_to_the_daily_total():
    days = [date(2024, 5, 1) + timedelta(days=n) for n in range(3)]
    chart = stacked_bars(days, [("배송", [2, 0, 1], "#000"), ("결제", [2, 0, 0], "#111")],
                         height=228)
    plot_height = chart.bottom - chart.top
    first_day = [bar for bar in chart.bars if bar.label.startswith("5월 1일")]
    assert sum(bar.height for bar in first_day) == pytest.approx(plot_height)  # 4 of max 4
    assert len(chart.bars) == 3  # no zero-height bars
    assert [t.label for t in chart.y_ticks] == ["0", "1", "2", "3", "4"]
    assert [item.label for item in chart.legend] == ["배송", "결제"]
    assert "배송 2건" in first_day[0].label


def test_an_empty_period_draws_no_bars():
    chart = stacked_bars([date(2024, 5, 1)], [("배송", [0], "#000")])
    assert chart.empty and chart.legend == []
