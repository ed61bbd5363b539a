"""Raise incidents from the inquiries themselves, tell the team, and answer their inquiries.

Each inquiry that reports a failure (a symptom, see `symptoms`) or that the analyzer calls an
outage is a signal. `incident_threshold` outage-like signals of one symptom within
`incident_window_minutes` open an incident; later inquiries with that symptom join it. While it
is open, matching inquiries get the outage article's holding reply as their draft; for
`incident_fixed_hours` after an editor closes it, they get a draft that says it is fixed, cited
to the editor's resolution note. The webhook hears of the opening, each tenfold growth and the
close, off the request path.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from suggester.knowledge.chunks import Chunk
from suggester.operations.symptoms import OTHER_SYMPTOM, OUTAGE_FLAG, is_outage, symptom_of
from suggester.operations.webhook import Webhook
from suggester.records.incidents import Incident, IncidentRecords, Observation
from suggester.records.insights import KST
from suggester.records.store import Store
from suggester.reply.analyze import Analysis, flag_owner
from suggester.reply.draft import PLACEHOLDER, Citation, Draft, Sentence
from suggester.reply.tone import to_formal
from suggester.settings import Settings

HOLDING_SECTION = "응대 예시"
RESOLUTION_SECTION = "복구 안내"


class IncidentDesk:
    """Detect, announce, close and answer incidents over one Store."""

    def __init__(self, settings: Settings, store: Store, *, webhook: Webhook | None = None
                 ) -> None:
        self.records = IncidentRecords(store)
        self.webhook = webhook or Webhook(settings.incident_webhook_url,
                                          timeout=settings.incident_webhook_timeout,
                                          retries=settings.incident_webhook_retries)
        self.threshold = settings.incident_threshold
        self.window = timedelta(minutes=settings.incident_window_minutes)
        self.fixed_for = timedelta(hours=settings.incident_fixed_hours)

    def symptom(self, inquiry: str, analysis: Analysis) -> str | None:
        """The inquiry's symptom; an outage that names none is grouped as 기타 장애."""
        return symptom_of(inquiry) or (OTHER_SYMPTOM if is_outage(analysis) else None)

    def matching(self, inquiry: str, analysis: Analysis, *, now: datetime | None = None
                 ) -> Incident | None:
        """The open (or lately closed) incident this inquiry reports, if any."""
        symptom = self.symptom(inquiry, analysis)
        if symptom is None:
            return None
        current = self.records.current(now=now or datetime.now(UTC),
                                       closed_within=self.fixed_for)
        return next((i for i in current if i.symptom == symptom), None)

    def observe(self, suggestion_id: str, inquiry: str, analysis: Analysis, *,
                now: datetime | None = None) -> Observation:
        """Count a logged inquiry towards its symptom's incident, opening one when due."""
        symptom = self.symptom(inquiry, analysis)
        if symptom is None:
            return Observation(incident=None)
        observation = self.records.record_signal(
            suggestion_id, symptom=symptom, outage=is_outage(analysis),
            at=now or datetime.now(UTC), threshold=self.threshold, window=self.window)
        incident = observation.incident
        if observation.opened and incident is not None:
            self.webhook.send(f":rotating_light: 장애 감지 #{incident.id} · {incident.symptom}: "
                              f"{_kst(incident.first_inquiry_at)}부터 문의 "
                              f"{incident.inquiries}건")
        elif incident is not None and incident.open:
            grown = self.records.claim_growth(incident.id)
            if grown is not None:
                self.webhook.send(f":chart_with_upwards_trend: 장애 #{incident.id} · "
                                  f"{incident.symptom}: 문의 {grown}건으로 늘었어요")
        return observation

    def close(self, incident_id: int, *, by: str, note: str) -> Incident:
        """Close the incident with the resolution note (복구 안내) and tell the channel."""
        incident = self.records.close(incident_id, by=by, note=note)
        self.webhook.send(f":white_check_mark: 장애 #{incident.id} · {incident.symptom} 종료 "
                          f"({by}, 문의 {incident.inquiries}건): {incident.resolution_note}")
        return incident

    def current(self, *, now: datetime | None = None) -> list[Incident]:
        """Open incidents, then those whose 'fixed' drafts are still given."""
        return self.records.current(now=now or datetime.now(UTC), closed_within=self.fixed_for)

    # -- the drafts an incident's inquiries get ------------------------------------------------

    def draft(self, incident: Incident, chunks: Iterable[Chunk], *, channel: str,
              values: dict[str, str]) -> Draft | None:
        """The holding reply while open, the 'fixed' reply once closed; None without one."""
        chunks = list(chunks)
        if incident.open:
            script = holding_script(chunks)
            if script is None:
                return None
            citation = Citation(number=1, chunk_id=script.id, article_id=script.article_id,
                                title=script.title, section=script.section,
                                version=script.version)
            return _draft(script.text, citation, channel, values, reason="incident_open",
                          reason_ko=f"장애 #{incident.id}({incident.symptom}) 진행 중: 장애 "
                                    "안내 문서의 대기 안내예요.")
        note = incident.resolution_note or ""
        text = (f"{{고객명}}님, 이용에 불편을 드려 죄송해요. {incident.symptom} 문제는 "
                f"{_kst(incident.closed_at or incident.opened_at)}에 복구되었어요. {note}")
        citation = Citation(number=1, chunk_id=f"incident-{incident.id}#{RESOLUTION_SECTION}",
                            article_id=flag_owner(chunks, OUTAGE_FLAG) or "",
                            title=f"장애 #{incident.id} 복구 안내", section=RESOLUTION_SECTION,
                            version=0)
        return _draft(text, citation, channel, values, reason="incident_fixed",
                      reason_ko=f"장애 #{incident.id}({incident.symptom})은 복구되었어요: "
                                f"{incident.closed_by}님이 쓴 복구 안내를 인용했어요.")


def holding_script(chunks: Iterable[Chunk]) -> Chunk | None:
    """The outage article's general script (`## 응대 예시`), the holding reply: the article
    whose front matter handles the `outage` flag (kb/README.md › handles_flags)."""
    chunks = list(chunks)
    article = flag_owner(chunks, OUTAGE_FLAG)
    return next((c for c in chunks if c.article_id == article and not c.internal
                 and c.section == HOLDING_SECTION), None)


def _draft(text: str, citation: Citation, channel: str, values: dict[str, str], *,
           reason: str, reason_ko: str) -> Draft:
    unfilled: list[str] = []

    def fill(match) -> str:
        if match.group(1) in values:
            return values[match.group(1)]
        unfilled.append(match.group(0))
        return match.group(0)

    filled = PLACEHOLDER.sub(fill, text.strip())
    if channel == "board":
        filled = to_formal(filled)
    sentence = Sentence(text=filled, citations=(citation.number,))
    return Draft(channel=channel, grounded=True, reason=reason, reason_ko=reason_ko,
                 sentences=[sentence], citations=[citation], paragraphs=[[sentence]],
                 unfilled=list(dict.fromkeys(unfilled)), source="incident")


def _kst(moment: datetime) -> str:
    local = moment.astimezone(KST)  # the team's clock, as on the insights page
    return f"{local.month}월 {local.day}일 {local:%H:%M}"
