"""Voice-of-the-customer queries by ISO week: type series, P2P disputes, correction drift.

They extend `Insights` (same read-only connections, same type rule: the agent's correction,
else the analyzer's first type) with what the weekly VOC meeting asks: which week a type
jumped or dropped, how P2P disputes escalated and what answered them, and whether agents
correct the classifier more often than before.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from suggester.records.insights import (
    _LATEST_CORRECTION,
    _TYPED,
    KST,
    UNTYPED,
    Insights,
    Window,
)

DISPUTE_TYPES = ("P2P분쟁", "상품상태", "사기·안전")


def iso_week(day: date) -> str:
    """The ISO week a day belongs to, written as the CLI takes it: 2026-W49."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def current_week() -> str:
    """This ISO week in Korean time, the week a report defaults to."""
    return iso_week(datetime.now(UTC).astimezone(KST).date())


def week_window(week: str) -> Window:
    """Monday 00:00 to the next Monday 00:00, Korean time, of an ISO week like 2026-W49."""
    try:
        year, number = week.upper().split("-W")
        monday = date.fromisocalendar(int(year), int(number), 1)
    except ValueError as exc:
        raise ValueError(f"week must look like 2026-W49, got {week!r}") from exc
    since = datetime.combine(monday, datetime.min.time(), tzinfo=KST)
    # `until` is the last instant of Sunday, so `Window.days` lists the seven days.
    return Window(since=since, until=since + timedelta(days=7) - timedelta(microseconds=1))


@dataclass(frozen=True, kw_only=True)
class DisputeType:
    category: str
    inquiries: int
    escalated: int  # a risk flag was raised: the inquiry went to a specialist
    articles: list[tuple[str, int]] = field(default_factory=list)  # cited, most often first

    @property
    def escalated_share(self) -> float:
        return self.escalated / self.inquiries if self.inquiries else 0.0


@dataclass(frozen=True, kw_only=True)
class CorrectionWeek:
    week: str
    suggestions: int
    corrected: int
    by_type: dict[str, tuple[int, int]]  # the analyzer's type → (suggestions, corrected)

    @property
    def share(self) -> float:
        return self.corrected / self.suggestions if self.suggestions else 0.0


class VocQueries(Insights):
    """The weekly VOC's aggregates, over the same database as `Insights`."""

    def type_weeks(self, last: Window, *, weeks: int = 5,
                   side: str | None = None) -> dict[str, list[tuple[str, int]]]:
        """Each type's inquiries per ISO week, the `weeks` weeks ending with `last`'s week."""
        since = last.since - timedelta(weeks=weeks - 1)
        daily = self.daily_types(Window(since=since, until=last.until), side=side)
        labels = list(dict.fromkeys(iso_week(day) for day in daily.days))
        series: dict[str, list[tuple[str, int]]] = {}
        for category in daily.categories:
            per_week: Counter[str] = Counter()
            for day, count in zip(daily.days, daily.series(category), strict=True):
                per_week[iso_week(day)] += count
            series[category] = [(label, per_week[label]) for label in labels]
        return series

    def disputes(self, window: Window) -> list[DisputeType]:
        """P2P dispute types: inquiries, the share escalated, the articles that answered."""
        marks = ", ".join(f"'{c}'" for c in DISPUTE_TYPES)  # constants, not user input
        sql = self._sql(_TYPED + f"""
            SELECT t.category, s.analysis_json, s.passages_json
            FROM typed t JOIN suggestions s ON s.id = t.id WHERE t.category IN ({marks})""")
        with self._read() as db:
            rows = db.execute(sql, window.params()).fetchall()
        counts: Counter[str] = Counter()
        escalated: Counter[str] = Counter()
        articles: dict[str, Counter[str]] = {c: Counter() for c in DISPUTE_TYPES}
        for category, analysis, passages in rows:
            counts[category] += 1
            escalated[category] += bool(json.loads(analysis).get("risk_flags"))
            # A set: a draft citing one article twice was still answered from it once.
            articles[category].update({p["article_id"] for p in json.loads(passages)
                                       if p.get("article_id")})
        return [DisputeType(category=c, inquiries=counts[c], escalated=escalated[c],
                            articles=articles[c].most_common(5)) for c in DISPUTE_TYPES]

    def correction_weeks(self, last: Window, *, weeks: int = 8) -> list[CorrectionWeek]:
        """Per ISO week: the share of suggestions whose type an agent corrected, per type."""
        window = Window(since=last.since - timedelta(weeks=weeks - 1), until=last.until)
        sql = self._sql(f"""WITH {_LATEST_CORRECTION}
            SELECT s.created_at, COALESCE({{first_type}}, '{UNTYPED}'),
                   CASE WHEN c.suggestion_id IS NULL THEN 0 ELSE 1 END
            FROM suggestions s LEFT JOIN latest_correction c ON c.suggestion_id = s.id
            WHERE s.created_at >= :since AND s.created_at < :until""")
        with self._read() as db:
            rows = db.execute(sql, window.params()).fetchall()
        tally: dict[str, dict[str, list[int]]] = {
            iso_week(day): {} for day in window.days}
        for created_at, category, corrected in rows:
            week = iso_week(datetime.fromisoformat(created_at).astimezone(KST).date())
            counts = tally.setdefault(week, {}).setdefault(category, [0, 0])
            counts[0] += 1
            counts[1] += corrected
        return [CorrectionWeek(week=week, suggestions=sum(n for n, _ in types.values()),
                               corrected=sum(c for _, c in types.values()),
                               by_type={t: (n, c) for t, (n, c) in sorted(types.items())})
                for week, types in tally.items()]


def changed_week(series: list[tuple[str, int]], *, falling: bool) -> str | None:
    """The week of the biggest jump (or drop) from the week before, when there was one."""
    steps = [(later[1] - earlier[1], later[0]) for earlier, later in itertools.pairwise(series)]
    if falling:
        steps = [(-change, week) for change, week in steps]
    best = max(steps, default=(0, None))
    return best[1] if best[0] > 0 else None
