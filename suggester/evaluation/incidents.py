"""Replay simulated days of inquiries through incident detection: normal days and an outage.

The incident settings' defaults come from here (`python -m suggester.evaluation.incidents`):
the lowest threshold that opens no incident on a simulated normal week at three times today's
volume, and how soon it opens one on a simulated payment outage. Traffic is seeded, so every
run prints the same table.

A normal day: `DAILY_INQUIRIES` spread over the day like a CX queue (quiet at night, busiest
after work), of which `OUTAGE_LIKE_SHARE` are one customer's app trouble, spread over the
symptoms. An outage: from `OUTAGE_START`, payment failures arrive at a rate that climbs to
`OUTAGE_PEAK_PER_MINUTE` in ten minutes and stays for an hour, on top of a normal day.
"""

from __future__ import annotations

import random
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from suggester.operations.incidents import IncidentDesk
from suggester.operations.symptoms import OUTAGE_FLAG
from suggester.records.store import Store
from suggester.reply.analyze import Analysis, RiskFlag, TypeScore
from suggester.settings import load_settings

DAILY_INQUIRIES = 3000
OUTAGE_LIKE_SHARE = 0.01
# Share of the day's inquiries by hour (KST), 0-23: a chat queue's usual shape.
HOURLY_SHAPE = (1, 1, 0.5, 0.5, 0.5, 0.5, 1, 2, 4, 6, 7, 7, 6, 7, 7, 7, 6, 6, 6, 7, 8, 8, 6, 3)
OUTAGE_START = timedelta(hours=14)  # 14:00 KST on the outage day
OUTAGE_PEAK_PER_MINUTE = 3.0
OUTAGE_MINUTES = 60
QUIET_BEFORE_CLOSE = timedelta(hours=1)
DAY_ONE = datetime(2026, 12, 7, tzinfo=UTC) - timedelta(hours=9)  # a Monday, 00:00 KST

# One customer's trouble on a normal day, by symptom (what `symptoms.SYMPTOMS` recognises).
EVERYDAY_TROUBLE = {
    "결제 오류": ("결제하려는데 카드 승인이 안 돼요", "결제 버튼 누르면 오류가 떠요"),
    "로그인": ("로그인이 안 돼요 비밀번호는 맞는데요", "인증번호가 안 와요"),
    "사진 업로드": ("상품 사진 업로드가 실패해요", "사진 첨부가 안 돼요"),
    "채팅": ("채팅 메시지가 안 보내져요",),
    "앱 튕김": ("앱이 자꾸 튕겨요", "상품 보다가 앱이 강제 종료돼요"),
    "접속 불가": ("사이트 접속이 안 돼요", "앱이 하얀 화면만 나와요"),
}
# What customers write during a payment outage (the analyzer raises the outage flag on these).
PAYMENT_OUTAGE = (
    "결제 버튼 누르면 계속 오류가 나요 서버 터졌나요?",
    "카드 바꿔도 결제가 안 돼요 지금 장애인가요?",
    "결제하려고 하면 계속 에러 떠요 먹통이에요",
    "결제 화면에서 앱이 멈춰요 서버 점검 중인가요?",
    "지금 결제가 계속 실패해요 사이트 먹통인가요",
)


@dataclass(frozen=True, kw_only=True)
class Arrival:
    at: datetime
    inquiry: str
    outage: bool  # whether the analyzer flags it (every trouble report here is outage-like)


@dataclass(frozen=True, kw_only=True)
class Replay:
    incidents: int
    first_inquiry_to_open: timedelta | None  # the outage's first inquiry to the opening


def normal_day(day: int, *, rng: random.Random, volume: float = 1.0) -> list[Arrival]:
    """One simulated normal day's outage-like inquiries (the rest never reach the detector)."""
    start = DAY_ONE + timedelta(days=day)
    expected = DAILY_INQUIRIES * OUTAGE_LIKE_SHARE * volume
    total = sum(HOURLY_SHAPE)
    arrivals = []
    for hour, share in enumerate(HOURLY_SHAPE):
        for _ in range(_poisson(rng, expected * share / total)):
            symptom = rng.choice(sorted(EVERYDAY_TROUBLE))
            at = start + timedelta(hours=hour, seconds=rng.uniform(0, 3600))
            arrivals.append(Arrival(at=at, inquiry=rng.choice(EVERYDAY_TROUBLE[symptom]),
                                    outage=True))
    return sorted(arrivals, key=lambda a: a.at)


def payment_outage(*, rng: random.Random, start: datetime | None = None,
                   minutes: int = OUTAGE_MINUTES) -> list[Arrival]:
    """A payment outage's inquiries: the rate climbs for ten minutes, then holds."""
    start = start or DAY_ONE + OUTAGE_START
    arrivals = []
    for minute in range(minutes):
        rate = OUTAGE_PEAK_PER_MINUTE * min(1.0, (minute + 1) / 10)
        for _ in range(_poisson(rng, rate)):
            at = start + timedelta(minutes=minute, seconds=rng.uniform(0, 60))
            arrivals.append(Arrival(at=at, inquiry=rng.choice(PAYMENT_OUTAGE), outage=True))
    return sorted(arrivals, key=lambda a: a.at)


def replay(arrivals: Sequence[Arrival], *, threshold: int, window_minutes: int,
           outage_start: datetime | None = None) -> Replay:
    """Feed arrivals through a real IncidentDesk over a fresh SQLite Store; count incidents."""
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings({"data_dir": Path(folder), "incident_threshold": threshold,
                                  "incident_window_minutes": window_minutes}, environ={})
        with Store(settings.database_path) as store:
            desk = IncidentDesk(settings, store)
            opened: list[datetime] = []
            last_seen: dict[int, datetime] = {}  # open incidents' latest inquiry
            for n, arrival in enumerate(arrivals):
                # A simulated editor closes an incident once it has been quiet for an hour,
                # so a recurrence later in the week counts as a new incident.
                for incident_id, seen in list(last_seen.items()):
                    if arrival.at - seen > QUIET_BEFORE_CLOSE:
                        desk.records.close(incident_id, by="replay", note="복구", at=arrival.at)
                        del last_seen[incident_id]
                observation = desk.observe(f"replay-{n}", arrival.inquiry,
                                           analysis_of(arrival.outage), now=arrival.at)
                if observation.incident is not None and observation.incident.open:
                    last_seen[observation.incident.id] = arrival.at
                if observation.opened:
                    opened.append(arrival.at)
    delay = None
    if outage_start is not None:
        after = [moment for moment in opened if moment >= outage_start]
        delay = after[0] - outage_start if after else None
    return Replay(incidents=len(opened), first_inquiry_to_open=delay)


def analysis_of(outage: bool) -> Analysis:
    """The analysis fields detection reads, for replaying without the analyzer."""
    category = "장애·긴급" if outage else "결제"
    flags = [RiskFlag(name=OUTAGE_FLAG, evidence=[], escalation=None)] if outage else []
    return Analysis(inquiry_types=[TypeScore(category=category, confidence=0.9)],
                    audience="unknown", audience_source="default", urgency="high",
                    sentiment="calm", risk_flags=flags)


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: small means only, which is all a minute or an hour needs here."""
    limit, count, product = pow(2.718281828459045, -mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _rows(thresholds: Sequence[int], windows: Sequence[int]) -> Iterator[str]:
    for window in windows:
        for threshold in thresholds:
            week = [a for day in range(7) for a in normal_day(day, rng=random.Random(day),
                                                               volume=3.0)]
            outage_rng = random.Random(99)
            failures = payment_outage(rng=outage_rng)
            outage = sorted(normal_day(0, rng=outage_rng) + failures, key=lambda a: a.at)
            normal = replay(week, threshold=threshold, window_minutes=window)
            hit = replay(outage, threshold=threshold, window_minutes=window,
                         outage_start=failures[0].at)
            delay = hit.first_inquiry_to_open
            yield (f"| {threshold} | {window} | {normal.incidents} | "
                   f"{'none' if delay is None else f'{delay.total_seconds() / 60:.1f} min'} |")


def main(argv: Sequence[str] = ()) -> None:
    """Print false incidents per normal week (3× volume) and time to open on an outage."""
    print("| threshold | window (min) | false incidents, normal week ×3 | outage: first "
          "inquiry → opened |")
    print("|---|---|---|---|")
    for row in _rows((3, 4, 5, 6, 8, 10), (10, 15, 30)):
        print(row)


if __name__ == "__main__":
    main(sys.argv[1:])
