"""Incidents from the inquiries: detection on simulated traffic, the records, the webhook."""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from suggester.evaluation.incidents import (
    DAY_ONE,
    analysis_of,
    normal_day,
    payment_outage,
    replay,
)
from suggester.operations.incidents import IncidentDesk, holding_script
from suggester.operations.symptoms import OTHER_SYMPTOM, symptom_of
from suggester.operations.webhook import Webhook
from suggester.records.incidents import IncidentRecords, UnknownIncident
from suggester.records.store import Store
from suggester.settings import load_settings

T0 = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=15)


# -- symptoms ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "symptom"), [
    ("결제 버튼 누르면 계속 오류가 나요", "결제 오류"),
    ("카드 승인이 안 돼요", "결제 오류"),
    ("로그인이 안 돼요", "로그인"),
    ("인증번호가 안 와요", "로그인"),
    ("상품 사진 업로드가 실패해요", "사진 업로드"),
    ("앱이 자꾸 튕겨요", "앱 튕김"),
    ("앱이 하얀 화면만 나와요", "접속 불가"),
    ("결제 방법이 궁금해요", None),           # a topic, not a failure
    ("로그인은 어떻게 하나요?", None),
    ("사진은 몇 장까지 올릴 수 있나요?", None),
])
def test_a_symptom_names_a_failure_not_a_topic(text, symptom):
    assert symptom_of(text) == symptom


# -- detection on simulated traffic (the settings' defaults come from this) ----------------------

def test_a_normal_week_opens_no_incident_with_the_default_settings():
    defaults = load_settings(environ={})
    week = [a for day in range(7) for a in normal_day(day, rng=random.Random(day))]
    assert len(week) > 100  # the week does carry everyday trouble reports
    result = replay(week, threshold=defaults.incident_threshold,
                    window_minutes=defaults.incident_window_minutes)
    assert result.incidents == 0


def test_a_simulated_outage_opens_exactly_one_incident_within_minutes():
    defaults = load_settings(environ={})
    rng = random.Random(7)
    failures = payment_outage(rng=rng)
    day = sorted(normal_day(0, rng=rng) + failures, key=lambda a: a.at)
    result = replay(day, threshold=defaults.incident_threshold,
                    window_minutes=defaults.incident_window_minutes,
                    outage_start=failures[0].at)
    assert result.incidents == 1
    assert result.first_inquiry_to_open is not None
    assert result.first_inquiry_to_open < timedelta(minutes=10)


def test_a_threshold_of_one_would_open_incidents_on_a_normal_day():
    """The normal day is not empty of signals: a low threshold does fire (a test of the test)."""
    day = normal_day(0, rng=random.Random(0), volume=3.0)
    assert replay(day, threshold=2, window_minutes=60).incidents > 0


# -- the records (SQLite and PostgreSQL) --------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        target: Path | str = tmp_path / "suggester.sqlite3"
    else:
        target = request.getfixturevalue("postgres_url")
    with Store(target) as opened:
        yield opened


def signal(records: IncidentRecords, n: int, *, symptom: str = "결제 오류", outage: bool = True,
           minutes: float = 0, threshold: int = 3):
    return records.record_signal(f"s{n}", symptom=symptom, outage=outage,
                                 at=T0 + timedelta(minutes=minutes), threshold=threshold,
                                 window=WINDOW)


def test_the_threshold_within_the_window_opens_one_incident_and_links_the_inquiries(store):
    records = IncidentRecords(store)
    assert signal(records, 1, minutes=0).incident is None
    assert signal(records, 2, minutes=20).incident is None   # the first fell out of the window
    assert signal(records, 3, minutes=21, symptom="로그인").incident is None  # another symptom
    assert signal(records, 4, minutes=22, outage=False).incident is None  # not outage-like
    opened = signal(records, 5, minutes=25)
    assert opened.incident is None
    observation = signal(records, 6, minutes=26)
    assert observation.opened and observation.incident is not None
    incident = observation.incident
    assert incident.symptom == "결제 오류" and incident.inquiries == 3
    assert incident.first_inquiry_at == T0 + timedelta(minutes=20)
    later = signal(records, 7, minutes=30, outage=False)  # mentions it: joins, not outage-like
    assert later.incident is not None and later.incident.id == incident.id and not later.opened
    assert records.linked(incident.id) == ["s2", "s5", "s6", "s7"]
    assert records.get(incident.id).inquiries == 4


def test_a_closed_incident_keeps_its_timeline_and_the_next_outage_opens_a_new_one(store):
    records = IncidentRecords(store)
    first = [signal(records, n, minutes=n) for n in range(3)][-1].incident
    assert first is not None
    closed = records.close(first.id, by="editor", note="결제가 정상화되었어요.",
                           at=T0 + timedelta(minutes=40))
    assert not closed.open and closed.resolution_note == "결제가 정상화되었어요."
    kinds = [event.kind for event in records.timeline(first.id)]
    assert kinds[0] == "first_inquiry" and "opened" in kinds and kinds[-1] == "closed"
    with pytest.raises(UnknownIncident):
        records.close(first.id, by="editor", note="again")
    with pytest.raises(UnknownIncident):
        records.close(9999, by="editor", note="none")
    again = [signal(records, n, minutes=n) for n in range(50, 53)][-1]
    assert again.opened and again.incident is not None and again.incident.id != first.id
    current = records.current(now=T0 + timedelta(minutes=60), closed_within=timedelta(hours=1))
    assert [i.id for i in current] == [again.incident.id, first.id]  # open first


def test_a_note_is_required_to_close(store):
    records = IncidentRecords(store)
    incident = [signal(records, n) for n in range(3)][-1].incident
    assert incident is not None
    with pytest.raises(Exception, match="resolution note"):
        records.close(incident.id, by="editor", note="   ")
    assert records.get(incident.id).open


def test_each_tenfold_growth_is_claimed_once(store):
    records = IncidentRecords(store)
    incident = [signal(records, n, minutes=n / 10) for n in range(3)][-1].incident
    assert incident is not None
    claims = []
    for n in range(3, 40):
        signal(records, n, minutes=n / 10)
        claims.append(records.claim_growth(incident.id))
    assert [c for c in claims if c is not None] == [30]  # 3 at opening, then 30
    assert "grew" in [e.kind for e in records.timeline(incident.id)]
    peak = records.get(incident.id)
    assert peak.peak_rate >= 30 and peak.peak_at is not None


# -- the webhook (a local HTTP server) ---------------------------------------------------------

class _Receiver(BaseHTTPRequestHandler):
    failures_left = 0
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 (the handler's name is http.server's)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        if cls.failures_left > 0:
            cls.failures_left -= 1
            self.send_response(500)
            self.end_headers()
            return
        cls.received.append(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"failures_left": 0, "received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", handler
    finally:
        server.shutdown()
        thread.join(timeout=5)


def desk_for(tmp_path: Path, url: str, **overrides) -> IncidentDesk:
    settings = load_settings({"data_dir": tmp_path, "incident_threshold": 3,
                              "incident_webhook_url": url, **overrides}, environ={})
    store = Store(settings.database_path)
    webhook = Webhook(url, timeout=2, retries=settings.incident_webhook_retries, first_wait=0.05)
    return IncidentDesk(settings, store, webhook=webhook)


def outage_burst(desk: IncidentDesk, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        desk.observe(f"s{n}", "결제하려고 하면 계속 에러 떠요", analysis_of(True),
                     now=T0 + timedelta(seconds=n))


def test_the_webhook_hears_the_opening_and_the_close(tmp_path, receiver):
    url, handler = receiver
    desk = desk_for(tmp_path, url)
    outage_burst(desk, 3)
    incident = desk.current(now=T0)[0]
    desk.close(incident.id, by="editor", note="결제가 정상화되었어요.")
    assert desk.webhook.wait_idle(10)
    texts = [message["text"] for message in handler.received]
    assert len(texts) == 2
    assert "장애 감지" in texts[0] and "결제 오류" in texts[0] and "3건" in texts[0]
    assert "종료" in texts[1] and "결제가 정상화되었어요." in texts[1]
    assert handler.received[0]["blocks"][0]["text"]["type"] == "mrkdwn"  # Slack's shape


def test_the_webhook_hears_a_tenfold_growth_once(tmp_path, receiver):
    url, handler = receiver
    desk = desk_for(tmp_path, url)
    outage_burst(desk, 35)
    assert desk.webhook.wait_idle(10)
    texts = [message["text"] for message in handler.received]
    assert len(texts) == 2 and "30건" in texts[1]


def test_a_failing_webhook_is_retried_and_logged_never_raised(tmp_path, receiver, caplog):
    url, handler = receiver
    handler.failures_left = 2
    desk = desk_for(tmp_path, url)
    with caplog.at_level(logging.WARNING, logger="suggester.operations.webhook"):
        outage_burst(desk, 3)  # returns although the webhook fails twice
        assert desk.webhook.wait_idle(10)
    assert len(handler.received) == 1
    assert desk.webhook.deliveries[-1].attempts == 3 and desk.webhook.deliveries[-1].delivered
    assert sum("failed" in r.getMessage() for r in caplog.records) == 2


def test_an_unreachable_webhook_is_given_up_and_logged(tmp_path, caplog):
    desk = desk_for(tmp_path, "http://127.0.0.1:9/hook", incident_webhook_retries=1)
    with caplog.at_level(logging.WARNING, logger="suggester.operations.webhook"):
        outage_burst(desk, 3)
        assert desk.webhook.wait_idle(20)
    assert not desk.webhook.deliveries[-1].delivered
    assert any("gave up" in r.getMessage() for r in caplog.records)


# -- the drafts --------------------------------------------------------------------------------

def test_matching_inquiries_get_the_holding_reply_then_the_fixed_one(tmp_path, shipped_retriever):
    desk = desk_for(tmp_path, "")
    chunks = list(shipped_retriever.snapshot().chunks.values())
    script = holding_script(chunks)
    assert script is not None and script.article_id == "outage-response"
    outage_burst(desk, 3, start=0)
    now = datetime.now(UTC)
    assert desk.matching("결제 방법이 궁금해요", analysis_of(False), now=now) is None
    incident = desk.matching("결제가 계속 실패해요", analysis_of(False), now=now)
    assert incident is not None and incident.open
    holding = desk.draft(incident, chunks, channel="chat", values={"고객명": "김민지"})
    assert holding is not None and holding.text.startswith("김민지님")
    assert holding.citations[0].article_id == "outage-response" and holding.source == "incident"
    closed = desk.close(incident.id, by="editor", note="지금은 결제가 정상적으로 돼요.")
    fixed = desk.draft(closed, chunks, channel="chat", values={})
    assert fixed is not None and "지금은 결제가 정상적으로 돼요." in fixed.text
    assert fixed.unfilled == ["{고객명}"]
    assert fixed.citations[0].section == "복구 안내"


def test_an_outage_without_a_named_symptom_is_grouped_as_other(tmp_path):
    desk = desk_for(tmp_path, "")
    assert desk.symptom("뭔가 이상해요 다들 그런가요", analysis_of(True)) == OTHER_SYMPTOM
    assert desk.symptom("뭔가 이상해요 다들 그런가요", analysis_of(False)) is None


def test_replayed_days_start_on_a_monday_in_korea():
    assert (DAY_ONE + timedelta(hours=9)).weekday() == 0


def test_a_symptom_is_found_in_linear_time_on_hostile_text():
    """A keyword followed by thousands of letters once took hours (the pattern split the run
    every way, O(n^4)); the fuzz tier found it. SIGALRM turns a hang into a failure."""
    import signal

    from suggester.operations.symptoms import symptom_of

    def hang(signum, frame):
        raise TimeoutError("symptom_of hangs on a long run of letters")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.setitimer(signal.ITIMER_REAL, 15)
    try:
        assert symptom_of("결제" + "가" * 4000) is None
        assert symptom_of("접속" + "나" * 4000) is None
        assert symptom_of("결제" + "가" * 25 + " 계속 자꾸 오류가 나요") == "결제 오류"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
