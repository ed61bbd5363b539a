"""Read the suggestion log back as voice-of-the-customer figures for the insights page.

Each query opens the Store's SQLite file read-only on its own connection, so the page neither
waits on nor blocks the app's writer (on PostgreSQL it borrows one of the Store's pooled
connections), and aggregates in SQL, so a year of suggestions costs no more Python than a day
of them. The few JSON and date expressions that SQLite and PostgreSQL spell differently come
from the database (`{first_type}` and the like, see `suggester.records.database`).

Two rules keep the figures honest:

* An inquiry's type is the agent's correction when there is one (the latest correction wins, as
  in `Store.corrections`), else the analyzer's first type.
* A verdict is the latest feedback row of a suggestion that judged the draft. The console sends a
  type correction on its own as verdict 'used' with no final_text (the API has no verdict-free
  feedback yet); such rows say nothing about the draft and are left out of acceptance.
"""

from __future__ import annotations

import json
import re
import sqlite3
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

from suggester.records.database import SQLiteDatabase
from suggester.records.store import (
    LIVE_CORRECTION,
    Store,
    StoreError,
    as_utc,
    iso_time,
    stored_time,
)

# Korea has no daylight saving time: a fixed offset is exact and SQLite can apply it.
KST = timezone(timedelta(hours=9), "KST")
UNTYPED = "미분류"
NO_CITATION = ""
RISE_RATIO = 2.0          # this week at least twice the earlier weekly average …
RISE_MIN_COUNT = 3        # … and at least this many inquiries, so 0 → 1 is not a surge
BASELINE_WEEKS = 4
MIN_BASELINE_WEEKS = 1.0  # under a week of earlier history nothing can be called rising
GAP_SIMILARITY = 0.3      # character-bigram Jaccard to a group's first question …
GAP_CONTAINED = 0.5       # … or this share of the shorter one's bigrams (overlap coefficient)
MIN_CONTAINED_BIGRAMS = 3
MAX_GAP_INQUIRIES = 3000  # newest ungrounded inquiries grouped; older ones add little
_MASK_TOKEN = re.compile(r"\[[^\[\]]{1,10}\]")
_NOT_WORD = re.compile(r"[\W_]+")
# Bigrams of polite endings and "can I …" frames: they say how a question is asked, not what it
# is about, and would otherwise group "can I sell a car?" with "can I sell pet food?".
_ENDING_BIGRAMS = frozenset(
    "나요 어요 아요 해요 세요 가요 까요 데요 네요 인가 한가 는가 되나 하나 있나 없나 수있 수없 "
    "있어 없어 있을 있는 을까 할까 될까 습니 니다 합니 됩니 주세 려주 해주 알려 궁금 문의 "
    "는데 은데 인데 건가 는지 은지 인지 어떻".split())

_LATEST_CORRECTION = f"""latest_correction AS (
    SELECT suggestion_id, corrected_types FROM feedback
    WHERE id IN (SELECT MAX(id) FROM feedback WHERE {LIVE_CORRECTION}
                 GROUP BY suggestion_id))"""
_VERDICTS = """verdicts AS (
    SELECT suggestion_id, verdict FROM feedback
    WHERE id IN (SELECT MAX(id) FROM feedback
                 WHERE final_text IS NOT NULL OR corrected_types = '[]'
                 GROUP BY suggestion_id))"""
_TYPED = f"""WITH {_LATEST_CORRECTION},
typed AS (
    SELECT s.id, s.created_at, s.grounded, s.inquiry_masked, s.channel, s.audience,
           COALESCE({{first_correction}}, {{first_type}}, '{UNTYPED}') AS category
    FROM suggestions s LEFT JOIN latest_correction c ON c.suggestion_id = s.id
    WHERE s.created_at >= :since AND s.created_at < :until{{side_filter}})"""
# The side an inquiry came from, as the analyzer (or the agent) logged it. The team sorts by
# side first; 'unknown' stays its own side, so the sides always add up to the whole.
SIDES = ("buyer", "seller", "unknown")
SIDE_NAMES = {"buyer": "구매자", "seller": "판매자", "unknown": "구분 안 됨"}
FALL_RATIO = 0.5  # this week at most half the earlier weekly average …


@dataclass(frozen=True, kw_only=True)
class Window:
    """Whole local days ending today: `since` is local midnight `days - 1` days before `until`."""

    since: datetime
    until: datetime
    tz: tzinfo = KST

    @classmethod
    def last_days(cls, days: int, *, now: datetime | None = None, tz: tzinfo = KST) -> Window:
        if days < 1:
            raise ValueError(f"days must be at least 1, got {days}")
        until = as_utc(now or datetime.now(UTC))
        first_day = until.astimezone(tz).date() - timedelta(days=days - 1)
        since = datetime.combine(first_day, datetime.min.time(), tzinfo=tz)
        return cls(since=since, until=until, tz=tz)

    @property
    def days(self) -> list[date]:
        first, last = self.since.astimezone(self.tz).date(), self.until.astimezone(self.tz).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]

    def params(self) -> dict[str, str]:
        return {"since": iso_time(self.since), "until": iso_time(self.until)}


@dataclass(frozen=True, kw_only=True)
class Summary:
    suggestions: int
    grounded: int
    judged: int
    verdicts: dict[str, int]
    corrected: int


@dataclass(frozen=True, kw_only=True)
class DailyTypes:
    days: list[date]
    categories: list[str]  # most frequent first
    counts: dict[tuple[date, str], int]

    def series(self, category: str) -> list[int]:
        return [self.counts.get((day, category), 0) for day in self.days]

    def total(self, category: str) -> int:
        return sum(self.series(category))


@dataclass(frozen=True, kw_only=True)
class TypeTrend:
    category: str
    this_week: int
    weekly_average: float
    rising: bool
    falling: bool = False  # at most half its earlier weekly average: did a fix work?

    @property
    def ratio(self) -> float | None:
        """This week over the earlier weekly average; None when there was nothing before."""
        return self.this_week / self.weekly_average if self.weekly_average else None


@dataclass(frozen=True, kw_only=True)
class Trends:
    baseline_weeks: float  # weeks of history the average is taken over (0 to 4)
    rows: list[TypeTrend]

    @property
    def comparable(self) -> bool:
        return self.baseline_weeks >= MIN_BASELINE_WEEKS


@dataclass(frozen=True, kw_only=True)
class GapGroup:
    questions: list[str]  # newest first; the first is the group's representative
    category: str
    last_seen: datetime
    first_seen: datetime
    channels: dict[str, int] = field(default_factory=dict)
    suggestion_ids: list[str] = field(default_factory=list)  # in the order of `questions`

    @property
    def size(self) -> int:
        return len(self.questions)


@dataclass(frozen=True, kw_only=True)
class ArticleAcceptance:
    article_id: str  # NO_CITATION for holding replies that cited nothing
    used: int
    edited: int
    rejected: int

    @property
    def total(self) -> int:
        return self.used + self.edited + self.rejected

    @property
    def accepted_rate(self) -> float:
        """Share of drafts sent, as they were or edited."""
        return (self.used + self.edited) / self.total if self.total else 0.0


@dataclass(frozen=True, kw_only=True)
class TypeCorrections:
    category: str
    predicted: int  # suggestions the analyzer gave this type
    removed: int    # … of which the agent took it away
    added: int      # suggestions where the agent added this type
    replaced_by: list[tuple[str, int]]  # what it was corrected to, most often first

    @property
    def removed_rate(self) -> float:
        return self.removed / self.predicted if self.predicted else 0.0


@dataclass(frozen=True, kw_only=True)
class PersonCorrections:
    """One person's (or API token's) type corrections in a window."""

    author: str  # a username, "token:NAME", or "" for corrections sent before authors were kept
    corrections: int
    undone: int
    last: datetime


@dataclass(frozen=True, kw_only=True)
class CorrectionEntry:
    """One type correction as an editor reviews it, with who sent it and who undid it."""

    feedback_id: int
    created_at: datetime
    author: str
    inquiry: str
    predicted: list[str]
    corrected: list[str]
    undone_by: str | None


class Insights:
    """Aggregate queries over the Store's database, read-only.

    `database` is a SQLite file, or a `Store` (whose file is opened read-only, or whose
    PostgreSQL connections are used).
    """

    def __init__(self, database: Path | str | Store) -> None:
        self._store: Store | None = None
        self._functions = SQLiteDatabase.functions
        self.database: Path | None = None
        if not isinstance(database, Store):
            self.database = Path(database)
        elif database.path is not None:
            self.database = database.path
        else:
            self._store, self._functions = database, database.sql_functions

    def _sql(self, template: str, side: str | None = None) -> str:
        """The query in this database's dialect, limited to one side when `side` is given."""
        if side is not None and side not in SIDES:
            raise ValueError(f"side must be one of {', '.join(SIDES)}, got {side!r}")
        side_filter = f" AND s.audience = '{side}'" if side else ""
        return template.format(**self._functions, side_filter=side_filter)

    @contextmanager
    def _read(self) -> Iterator[Any]:
        if self._store is not None:
            with self._store.read_connection() as connection:
                yield connection
            return
        assert self.database is not None
        uri = self.database.resolve().as_uri() + "?mode=ro"
        try:
            connection = sqlite3.connect(uri, uri=True, timeout=10)
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot read {self.database} ({exc}) — start the app once so "
                             "it creates the database") from exc
        with closing(connection):
            yield connection

    def summary(self, window: Window) -> Summary:
        """Count suggestions, grounded ones, verdicts and corrections in the window."""
        sql = f"""WITH {_LATEST_CORRECTION}, {_VERDICTS}
            SELECT COUNT(*), COALESCE(SUM(s.grounded), 0),
                   COUNT(v.verdict), COUNT(CASE WHEN v.verdict = 'used' THEN 1 END),
                   COUNT(CASE WHEN v.verdict = 'edited' THEN 1 END),
                   COUNT(CASE WHEN v.verdict = 'rejected' THEN 1 END), COUNT(c.suggestion_id)
            FROM suggestions s LEFT JOIN verdicts v ON v.suggestion_id = s.id
            LEFT JOIN latest_correction c ON c.suggestion_id = s.id
            WHERE s.created_at >= :since AND s.created_at < :until"""
        with self._read() as db:
            total, grounded, judged, used, edited, rejected, corrected = db.execute(
                sql, window.params()).fetchone()
        return Summary(suggestions=total, grounded=grounded, judged=judged, corrected=corrected,
                       verdicts={"used": used, "edited": edited, "rejected": rejected})

    def daily_types(self, window: Window, *, side: str | None = None) -> DailyTypes:
        """Count inquiries per local day and type (one type per inquiry, corrections first)."""
        sql = self._sql(_TYPED + """
            SELECT {local_day} AS day, category, COUNT(*) FROM typed
            GROUP BY day, category""", side)
        with self._read() as db:
            rows = db.execute(sql, {**window.params(), "offset": _offset(window)}).fetchall()
        counts = {(date.fromisoformat(day), category): n for day, category, n in rows}
        totals: Counter[str] = Counter()
        for (_, category), n in counts.items():
            totals[category] += n
        categories = [c for c, _ in sorted(totals.items(), key=lambda item: (-item[1], item[0]))]
        return DailyTypes(days=window.days, categories=categories, counts=counts)

    def trends(self, *, now: datetime | None = None, side: str | None = None) -> Trends:
        """Compare each type's last 7 days with its weekly average over the 4 weeks before."""
        until = as_utc(now or datetime.now(UTC))
        week_start = until - timedelta(days=7)
        window = Window(since=week_start - timedelta(weeks=BASELINE_WEEKS), until=until)
        sql = self._sql(_TYPED + """
            SELECT category, COUNT(CASE WHEN created_at >= :week_start THEN 1 END),
                   COUNT(CASE WHEN created_at < :week_start THEN 1 END)
            FROM typed GROUP BY category""", side)
        with self._read() as db:
            rows = db.execute(sql, {**window.params(),
                                    "week_start": iso_time(week_start)}).fetchall()
            earliest = db.execute("SELECT MIN(created_at) FROM suggestions").fetchone()[0]
        weeks = _baseline_weeks(earliest, week_start)
        trends = [_trend(category, now_n, before_n, weeks) for category, now_n, before_n in rows]
        trends.sort(key=lambda t: (not t.rising, -t.this_week, -(t.ratio or 0), t.category))
        return Trends(baseline_weeks=weeks, rows=trends)

    def knowledge_gaps(self, window: Window, *, side: str | None = None) -> list[GapGroup]:
        """Group the inquiries no article answered (grounded: false) by wording."""
        sql = self._sql(_TYPED + """
            SELECT inquiry_masked, created_at, channel, category, id FROM typed
            WHERE grounded = 0 ORDER BY created_at DESC, id DESC LIMIT :limit""", side)
        with self._read() as db:
            rows = db.execute(sql, {**window.params(), "limit": MAX_GAP_INQUIRIES}).fetchall()
        groups = group_similar([row[0] for row in rows])
        result = [_gap_group([rows[i] for i in members]) for members in groups]
        result.sort(key=lambda g: (-g.size, -g.last_seen.timestamp()))
        return result

    def acceptance(self, window: Window) -> list[ArticleAcceptance]:
        """Count verdicts per cited article; a draft citing two articles counts for both."""
        sql = self._sql(f"""WITH {_VERDICTS}
            SELECT COALESCE({{cited_article}}, '') AS article, v.verdict, COUNT(DISTINCT s.id)
            FROM suggestions s JOIN verdicts v ON v.suggestion_id = s.id
            {{cited_passages}}
            WHERE s.created_at >= :since AND s.created_at < :until
            GROUP BY article, v.verdict""")
        with self._read() as db:
            rows = db.execute(sql, window.params()).fetchall()
        by_article: dict[str, Counter[str]] = {}
        for article, verdict, n in rows:
            by_article.setdefault(article, Counter())[verdict] = n
        result = [ArticleAcceptance(article_id=article, used=c["used"], edited=c["edited"],
                                    rejected=c["rejected"]) for article, c in by_article.items()]
        result.sort(key=lambda a: (-a.total, a.accepted_rate, a.article_id))
        return result

    def corrections(self, window: Window) -> list[TypeCorrections]:
        """Per type: how often the analyzer gave it, and how often agents removed or added it."""
        predicted_sql = self._sql("""SELECT {predicted_type}, COUNT(*)
            FROM suggestions s, {predicted_types}
            WHERE s.created_at >= :since AND s.created_at < :until GROUP BY 1""")
        corrected_sql = self._sql(f"""WITH {_LATEST_CORRECTION}
            SELECT {{analysis_types}}, c.corrected_types
            FROM suggestions s JOIN latest_correction c ON c.suggestion_id = s.id
            WHERE s.created_at >= :since AND s.created_at < :until""")
        with self._read() as db:
            predicted = dict(db.execute(predicted_sql, window.params()).fetchall())
            corrected = db.execute(corrected_sql, window.params()).fetchall()
        return _tally_corrections(predicted, corrected)


    def corrections_by_person(self, window: Window) -> list[PersonCorrections]:
        """Count each person's type corrections in the window (undone ones too), most first."""
        sql = """SELECT COALESCE(author, ''), COUNT(*), COUNT(undone_at), MAX(created_at)
            FROM feedback WHERE corrected_types != '[]'
            AND created_at >= :since AND created_at < :until
            GROUP BY COALESCE(author, '') ORDER BY COUNT(*) DESC, MAX(created_at) DESC"""
        with self._read() as db:
            rows = db.execute(sql, window.params()).fetchall()
        return [PersonCorrections(author=author, corrections=n, undone=undone,
                                  last=stored_time(last))
                for author, n, undone, last in rows]

    def recent_corrections(self, window: Window, *, author: str | None = None,
                           limit: int = 50) -> list[CorrectionEntry]:
        """The newest type corrections in the window, of one `author` when given."""
        sql = self._sql("""SELECT f.id, f.created_at, COALESCE(f.author, ''), s.inquiry_masked,
                   {analysis_types}, f.corrected_types, f.undone_by
            FROM feedback f JOIN suggestions s ON s.id = f.suggestion_id
            WHERE f.corrected_types != '[]' AND f.created_at >= :since AND f.created_at < :until
            """ + ("AND COALESCE(f.author, '') = :author " if author is not None else "")
                        + "ORDER BY f.id DESC LIMIT :limit")
        params = {**window.params(), "limit": limit}
        if author is not None:
            params["author"] = author
        with self._read() as db:
            rows = db.execute(sql, params).fetchall()
        return [CorrectionEntry(
            feedback_id=id_, created_at=stored_time(created_at),
            author=who, inquiry=inquiry,
            predicted=[t.get("category", "") for t in json.loads(predicted or "[]")],
            corrected=json.loads(corrected), undone_by=undone_by)
            for id_, created_at, who, inquiry, predicted, corrected, undone_by in rows]


def _tally_corrections(predicted: dict[str, int],
                       corrected: Sequence[tuple[str | None, str]]) -> list[TypeCorrections]:
    removed: Counter[str] = Counter()
    added: Counter[str] = Counter()
    replaced_by: dict[str, Counter[str]] = {}
    for analysis_types, corrected_json in corrected:
        before = {t.get("category") for t in json.loads(analysis_types or "[]")} - {None}
        after = set(json.loads(corrected_json))
        for category in before - after:
            removed[category] += 1
            replaced_by.setdefault(category, Counter()).update(after - before)
        added.update(after - before)
    categories = set(predicted) | set(added)
    rows = [TypeCorrections(category=c, predicted=predicted.get(c, 0), removed=removed[c],
                            added=added[c],
                            replaced_by=replaced_by.get(c, Counter()).most_common())
            for c in categories]
    rows.sort(key=lambda r: (-(r.removed + r.added), -r.predicted, r.category))
    return rows


def _trend(category: str, this_week: int, before: int, weeks: float) -> TypeTrend:
    average = before / weeks if weeks >= MIN_BASELINE_WEEKS else 0.0
    comparable = weeks >= MIN_BASELINE_WEEKS
    rising = comparable and this_week >= RISE_MIN_COUNT and this_week >= RISE_RATIO * average
    # The mirror of rising: an average worth the name, and this week at most half of it.
    falling = comparable and average >= RISE_MIN_COUNT and this_week <= FALL_RATIO * average
    return TypeTrend(category=category, this_week=this_week, weekly_average=average,
                     rising=rising, falling=falling)


def _baseline_weeks(earliest: str | None, week_start: datetime) -> float:
    """Weeks of history before this week, at most four: a young log is not averaged over 4."""
    if earliest is None:
        return 0.0
    span = week_start - datetime.fromisoformat(earliest)
    return max(0.0, min(float(BASELINE_WEEKS), span / timedelta(weeks=1)))


def _gap_group(rows: list[tuple[str, str, str, str, str]]) -> GapGroup:
    times = [datetime.fromisoformat(row[1]) for row in rows]
    category = Counter(row[3] for row in rows).most_common(1)[0][0]
    return GapGroup(questions=[row[0] for row in rows], category=category,
                    last_seen=max(times), first_seen=min(times),
                    channels=dict(Counter(row[2] for row in rows)),
                    suggestion_ids=[row[4] for row in rows])


def bigrams(text: str) -> frozenset[str]:
    """Character bigrams of the words, without masks, spaces, punctuation and endings."""
    compact = _NOT_WORD.sub("", _MASK_TOKEN.sub("", unicodedata.normalize("NFC", text)).lower())
    if len(compact) < 2:
        return frozenset({compact}) if compact else frozenset()
    grams = {compact[i:i + 2] for i in range(len(compact) - 1)}
    return frozenset(grams - _ENDING_BIGRAMS) or frozenset(grams)


def group_similar(texts: Sequence[str], threshold: float = GAP_SIMILARITY) -> list[list[int]]:
    """Group texts by bigram Jaccard to each group's first text; indices, in input order.

    Leader clustering with an inverted index: each text is compared only with the groups that
    share a bigram with it, so thousands of texts group in well under a second.
    """
    leaders: list[frozenset[str]] = []
    groups: list[list[int]] = []
    postings: dict[str, list[int]] = {}
    for index, text in enumerate(texts):
        grams = bigrams(text)
        shared = Counter(g for gram in grams for g in postings.get(gram, ()))
        best, best_score = None, threshold
        for group, overlap in shared.items():
            score = _similarity(overlap, len(grams), len(leaders[group]))
            if score >= best_score:
                best, best_score = group, score
        if best is None:
            best = len(groups)
            leaders.append(grams)
            groups.append([])
            for gram in grams:
                postings.setdefault(gram, []).append(best)
        groups[best].append(index)
    return groups


def _similarity(overlap: int, size: int, other: int) -> float:
    """Jaccard, raised to the overlap coefficient when a short question sits inside a long one.

    "해외 배송 되나요" and "해외로도 배송해 주시나요" share few bigrams of the longer one, so
    plain Jaccard misses them; three bigrams at least keep "환불" from joining every question.
    """
    jaccard = overlap / (size + other - overlap)
    smaller = min(size, other)
    if smaller >= MIN_CONTAINED_BIGRAMS and overlap / smaller >= GAP_CONTAINED:
        return max(jaccard, GAP_SIMILARITY)
    return jaccard




def _offset(window: Window) -> str:
    offset = window.since.utcoffset() or timedelta(0)
    return f"{int(offset.total_seconds() // 60):+d} minutes"
