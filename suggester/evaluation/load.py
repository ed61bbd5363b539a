"""`suggester load-test`: many agents asking while an editor publishes, against a real server.

N client threads, each with its own agent API token, post golden inquiries to `/api/suggest`
for D seconds while a signed-in editor
publishes an edit of one article every few seconds through the editor's form (a fee sentence
that alternates between two wordings). Every response is kept and checked afterwards:

- no 5xx and no connection error;
- no torn read: every passage, citation and follow-up names an (article, version) that existed
  — a file of the KB at the start or a version published during the run, from the article
  history — with exactly that version's chunk text; every draft sentence comes from the chunk
  it cites; and one response never mixes two versions of an article.

The run works on copies (KB and data dir in a temporary folder), never on the KB it was given.
"""

from __future__ import annotations

import random
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from suggester.evaluation.bench import percentile
from suggester.evaluation.serving import (
    EditorSession,
    Published,
    Server,
    make_token,
    post_json,
)
from suggester.knowledge.articles import discover, parse_article, read_article
from suggester.knowledge.chunks import chunk_article
from suggester.records.store import Store
from suggester.reply.compose import without_name
from suggester.search.index import Indexer
from suggester.settings import Settings

EDITED_ARTICLE = "selling-fees"
# One sentence of the edited article, alternating between two wordings on every publish.
FEE_WORDINGS = ("상품가의 5%이고, 계산된 금액이", "상품가의 5%이며, 계산된 금액이")
FEE_QUESTION = "판매 수수료는 몇 퍼센트예요? 정산 금액에서 얼마나 빠지나요?"
EDITOR = "load-editor"
UNREACHABLE_RATE_LIMIT = 10**9  # requests a minute per token during a load test
SERVED_ACTIONS = ("publish", "restore", "archive")  # history actions that wrote the file


def alternate_fee(source: str) -> str:
    """The edit published every few seconds: swap the fee sentence's wording."""
    first, second = FEE_WORDINGS
    if first in source:
        return source.replace(first, second, 1)
    if second in source:
        return source.replace(second, first, 1)
    raise ValueError(f"{EDITED_ARTICLE} has neither wording of its fee sentence")


@dataclass(kw_only=True)
class Sample:
    """One request: when it started (seconds into the run), how long it took, what came back."""

    client: int
    started: float
    latency_ms: float
    status: int  # 0 for a connection error
    error: str = ""
    body: Any = None


@dataclass(kw_only=True)
class LoadReport:
    clients: int
    seconds: float
    workers: int
    samples: list[Sample] = field(default_factory=list)
    publishes: list[Published] = field(default_factory=list)
    torn: list[str] = field(default_factory=list)
    checked_citations: int = 0
    edited_versions_cited: set[int] = field(default_factory=set)
    server_errors: list[str] = field(default_factory=list)  # tracebacks in the server output

    @property
    def latencies(self) -> list[float]:
        return [s.latency_ms for s in self.samples if s.status]

    @property
    def statuses(self) -> Counter[int]:
        return Counter(s.status for s in self.samples)

    @property
    def server_error_count(self) -> int:
        return sum(1 for s in self.samples if s.status >= 500)

    @property
    def connection_errors(self) -> list[str]:
        return [s.error for s in self.samples if s.status == 0]

    @property
    def failed_publishes(self) -> list[Published]:
        return [p for p in self.publishes if not p.ok]

    def figures(self) -> dict[str, float]:
        latencies = self.latencies or [0.0]
        return {
            "requests": len(self.samples),
            "throughput_rps": len(self.samples) / self.seconds,
            "p50_ms": percentile(latencies, 0.50),
            "p95_ms": percentile(latencies, 0.95),
            "p99_ms": percentile(latencies, 0.99),
            "max_ms": max(latencies),
            "status_5xx": self.server_error_count,
            "connection_errors": len(self.connection_errors),
            "publishes": len(self.publishes),
            "failed_publishes": len(self.failed_publishes),
            "torn_reads": len(self.torn),
        }

    def lines(self) -> list[str]:
        f = self.figures()
        statuses = ", ".join(f"{code or 'no answer'}: {n:,}"
                             for code, n in sorted(self.statuses.items()))
        publish_seconds = [p.seconds for p in self.publishes] or [0.0]
        return [
            f"load: {self.clients} clients for {self.seconds:.0f} s against `suggester serve "
            f"--prod` with {self.workers} workers, an editor publishing "
            f"{EDITED_ARTICLE} meanwhile",
            f"requests: {f['requests']:,.0f} ({f['throughput_rps']:.1f}/s); {statuses}",
            f"latency (client side, queueing included): p50 {f['p50_ms']:,.0f} ms, "
            f"p95 {f['p95_ms']:,.0f} ms, p99 {f['p99_ms']:,.0f} ms, max {f['max_ms']:,.0f} ms",
            f"5xx: {f['status_5xx']:.0f}; connection errors: {f['connection_errors']:.0f}; "
            f"server tracebacks: {len(self.server_errors)}",
            f"publishes: {f['publishes']:.0f} ({f['failed_publishes']:.0f} failed), each "
            f"p50 {percentile(publish_seconds, 0.5):.2f} s, max {max(publish_seconds):.2f} s",
            f"torn reads: {f['torn_reads']:.0f} ({self.checked_citations:,} passages, citations "
            f"and follow-ups checked; {EDITED_ARTICLE} cited at "
            f"{len(self.edited_versions_cited)} different versions)",
        ]


def golden_inquiries(split: str = "dev") -> list[str]:
    """Realistic inquiries: the golden split's, plus the fee question of the edited article."""
    from suggester.evaluation.golden import load_golden

    inquiries = [item.inquiry for item in load_golden(split)]
    inquiries += [FEE_QUESTION] * max(1, len(inquiries) // 4)
    random.Random(7).shuffle(inquiries)
    return inquiries


def run_load(base_url: str, *, clients: int, seconds: float, inquiries: Sequence[str],
             tokens: Sequence[str], editor: EditorSession | None = None,
             publish_every: float = 3.0, article_id: str = EDITED_ARTICLE,
             edit: Callable[[str], str] = alternate_fee, min_publishes: int = 2) -> LoadReport:
    """Drive the server for `seconds`, client n with `tokens[n]`; return every response
    (checked later by `check_torn`).

    With an editor, the run goes on past `seconds` until `min_publishes` publishes are done:
    on a busy machine a publish queues behind the agents' requests for many seconds, and a
    run with one publish would not test a reader racing a second one.
    """
    report = LoadReport(clients=clients, seconds=seconds, workers=0)
    began = time.monotonic()
    deadline = began + seconds
    lock = threading.Lock()
    editor_done = threading.Event()
    if editor is None:
        editor_done.set()

    def running() -> bool:
        return time.monotonic() < deadline or not editor_done.is_set()

    def client(number: int) -> None:
        position = number * 7
        while running():
            inquiry = inquiries[position % len(inquiries)]
            position += 1
            started = time.monotonic()
            try:
                status, body = post_json(base_url, "/api/suggest",
                                         {"inquiry": inquiry, "channel": "chat"}, timeout=120,
                                         token=tokens[number])
                error = ""
            except OSError as exc:
                status, body, error = 0, None, f"{type(exc).__name__}: {exc}"
            sample = Sample(client=number, started=started - began, status=status, body=body,
                            latency_ms=(time.monotonic() - started) * 1000, error=error)
            with lock:
                report.samples.append(sample)

    def publisher() -> None:
        try:
            publish_until_done()
        finally:  # the clients wait for this, whatever happens here
            editor_done.set()

    def publish_until_done() -> None:
        assert editor is not None
        while time.monotonic() < deadline or len(report.publishes) < min_publishes:
            started = time.monotonic()
            try:
                outcome = editor.publish(article_id, edit)
            except Exception as exc:  # noqa: BLE001 - any failure is a failed publish
                outcome = Published(status=0, ok=False, version=None, message=str(exc),
                                    seconds=time.monotonic() - started)
            report.publishes.append(outcome)
            time.sleep(max(0.0, min(publish_every - (time.monotonic() - started),
                                    deadline - time.monotonic())))

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    if editor is not None:
        threads.append(threading.Thread(target=publisher, daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.seconds = time.monotonic() - began
    return report


# -- torn reads ---------------------------------------------------------------------------------


class Versions:
    """Every version of every article that was ever on disk during a run, by (id, version)."""

    def __init__(self) -> None:
        self._sources: dict[tuple[str, int], set[str]] = {}
        self._chunks: dict[tuple[str, int], list[dict[str, str]]] = {}

    def add(self, article_id: str, version: int, source: str) -> None:
        self._sources.setdefault((article_id, version), set()).add(source)

    def add_kb(self, kb_dir: Path) -> None:
        for path in discover(kb_dir):
            article = read_article(path)
            self.add(article.id, article.version, article.source)

    def add_history(self, store: Store, article_ids: Iterable[str]) -> None:
        for article_id in article_ids:
            for entry in store.article_history(article_id):
                if entry.action in SERVED_ACTIONS:
                    self.add(article_id, entry.version, entry.source)

    def chunk_texts(self, article_id: str, version: int) -> list[dict[str, str]] | None:
        """{chunk id: text} of each source this version had; None if it never existed."""
        key = (article_id, version)
        if key not in self._sources:
            return None
        if key not in self._chunks:
            self._chunks[key] = [
                {c.id: c.text for c in chunk_article(parse_article(s, Path(f"{article_id}.md")))}
                for s in sorted(self._sources[key])]
        return self._chunks[key]


def check_torn(report: LoadReport, versions: Versions) -> None:
    """Fill `report.torn` with every response that does not match one state of the KB."""
    for sample in report.samples:
        if sample.status != 200 or not isinstance(sample.body, dict):
            continue
        problems = _response_problems(sample.body, versions, report)
        report.torn += [f"response at {sample.started:.1f} s: {p}" for p in problems]


def _response_problems(body: dict[str, Any], versions: Versions,
                       report: LoadReport) -> list[str]:
    problems: list[str] = []
    cited: dict[str, set[int]] = {}

    def check(where: str, ref: dict[str, Any], text: str | None = None,
              contained: bool = False) -> dict[str, str] | None:
        article_id, version, chunk_id = ref["article_id"], ref["version"], ref["chunk_id"]
        report.checked_citations += 1
        cited.setdefault(article_id, set()).add(version)
        if article_id == EDITED_ARTICLE:
            report.edited_versions_cited.add(version)
        texts = versions.chunk_texts(article_id, version)
        if texts is None:
            problems.append(f"{where} cites {article_id} v{version}, which never existed")
            return None
        matching = [t for t in texts if chunk_id in t]
        if not matching:
            problems.append(f"{where} cites chunk {chunk_id}, not in {article_id} v{version}")
            return None
        if text is not None and not any(_agrees(text, t[chunk_id], contained)
                                        for t in matching):
            problems.append(f"{where}: the text is not {article_id} v{version}'s "
                            f"{chunk_id}: {text[:80]!r}")
        return matching[0]

    for key in ("passages", "internal_notes"):
        for passage in body.get(key, []):
            check(key, passage, passage["text"])
    draft = body.get("draft", {})
    by_number = {c["number"]: c for c in draft.get("citations", [])}
    for citation in by_number.values():
        check("draft citation", citation)
    for sentence in draft.get("sentences", []):
        for number in sentence["citations"]:
            if number not in by_number:
                problems.append(f"a draft sentence cites [{number}], which is not listed")
                continue
            check("draft sentence", by_number[number], sentence["text"], contained=True)
    for item in body.get("anticipated", []):
        check("follow-up", item["citation"], item["answer"], contained=True)
    problems += [f"mixes versions {sorted(v)} of {a}" for a, v in cited.items() if len(v) > 1]
    return problems


_SPACE = re.compile(r"\s+")


def _agrees(text: str, chunk_text: str, contained: bool) -> bool:
    if not contained:
        return text == chunk_text
    text, chunk_text = _SPACE.sub(" ", text).strip(), _SPACE.sub(" ", chunk_text)
    # The composer names the customer once: a later "{고객명}님" of the chunk reads "고객님".
    return text in chunk_text or text in without_name(chunk_text)


# -- the whole run, as `suggester load-test` does it -----------------------------------------------


def load_test(settings: Settings, *, clients: int, seconds: float, workers: int = 2,
              publish_every: float = 3.0, work_dir: Path | None = None,
              data_from: Path | None = None,
              log: Callable[[str], None] = lambda line: None) -> LoadReport:
    """Copy the KB, index it, serve it with gunicorn, drive it and check every response.

    `data_from` reuses an index of the same KB (copied, never changed); otherwise the copy is
    indexed afresh (cheap when the vector cache already holds the KB).
    """
    temporary = None
    if work_dir is None:
        temporary = tempfile.TemporaryDirectory(prefix="suggester-load-")
        work_dir = Path(temporary.name)
    try:
        kb_dir, data_dir = work_dir / "kb", work_dir / "data"
        shutil.copytree(settings.kb_dir, kb_dir)
        if data_from is not None:
            shutil.copytree(data_from, data_dir)
        # An embedded Chroma of its own: a shared Chroma server's collection is never touched.
        copy = replace(settings, kb_dir=kb_dir, data_dir=data_dir, chroma_host="",
                       database=data_dir / "suggester.sqlite3",
                       cache_dir=settings.cache_path.parent)
        if data_from is None:
            log("indexing a copy of the KB…")
            Indexer(copy).sync()
        versions = Versions()
        versions.add_kb(kb_dir)
        password = secrets.token_urlsafe(12)
        with Store(copy.database_path) as store:
            store.add_user(EDITOR, password, role="editor")
        tokens = [make_token(copy.database_path, f"load-agent-{n}") for n in range(clients)]
        # Every request is counted against its token's limit, as in production, but the
        # limit is out of reach: the run measures serving, not refusals.
        server = Server(kb_dir=kb_dir, data_dir=data_dir, cache_dir=copy.cache_path.parent,
                        database=copy.database_path, workers=workers,
                        log_path=work_dir / "server.log",
                        environ={"SUGGESTER_API_RATE_LIMIT": str(UNREACHABLE_RATE_LIMIT)})
        log(f"starting `suggester serve --prod` with {workers} workers…")
        with server:
            editor = EditorSession(server.base_url, EDITOR, password)
            log(f"{clients} clients for {seconds:.0f} s…")
            report = run_load(server.base_url, clients=clients, seconds=seconds,
                              inquiries=golden_inquiries(), tokens=tokens, editor=editor,
                              publish_every=publish_every)
        report.workers = workers
        report.server_errors = server.output.split("Traceback")[1:]
        with Store(copy.database_path) as store:
            versions.add_history(store, [EDITED_ARTICLE])
        check_torn(report, versions)
        return report
    finally:
        if temporary is not None:
            temporary.cleanup()
