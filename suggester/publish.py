"""The safe write path of an article: validate → history → atomic write → re-index that article.

Every change an editor makes goes through `Publisher`, in this order:

1. lint the new source against the rest of the KB; any error refuses the save (`path:line`);
2. stage the new file (a temp file in the same folder, fsynced) — a full disk or a read-only
   folder fails here, before anything is recorded;
3. append the version to the store's `article_history` (author, action, full source);
4. `os.replace` the temp file over the article and fsync the folder: readers see the old or
   the new file, never a torn one. This rename is the moment the publish happens;
5. re-index only that article (Chroma, then a new BM25 generation); retrievers pick up the new
   lexical generation at their next query.

All of it runs under an `fcntl` lock (`data_dir/publish.lock`), so two editors or processes
never interleave. A draft of an article that is currently published goes to history only: the
file — and so what agents are served — stays the published version until the draft is
published.

What a crash (kill -9, power cut) at each point leaves, and what `recover` — run by `suggester
serve` before it serves anything — makes of it:

- before 3: the old file and a staging file, which `recover` deletes. Nothing was published.
- between 3 and 4: the old file, and a history entry for a version that was never served. The
  entry stays (history is append-only: no version an editor submitted is lost, and it can be
  restored), and `recover` appends the file's actual state after it, author `recovery`, so an
  article's last history entry is always the version agents are served. (With a shared
  database the history is also what hosts replicate from: other hosts apply the entry, and
  `serve` catches up before `recover` runs, so there the interrupted publish completes.)
- after 4: the new file, whose history entry was written before it; the index may be behind
  the file, and `recover` re-syncs it (`Indexer.repair`).

A history entry therefore exists for every version that was ever served, and the file is always
a whole version.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from suggester.errors import ArticleError
from suggester.knowledge.articles import (
    ARTICLE_ID,
    ARTICLE_TYPES,
    Article,
    discover,
    find_article_path,
    parse_article,
    read_article,
)
from suggester.knowledge.files import STAGING_SUFFIX, staged_write
from suggester.knowledge.lint import ERROR, Finding, lint_source
from suggester.publish_lock import (
    PublishBusy,
    PublishError,
    WriteFailed,
    publish_lock,
    write_error,
)
from suggester.records.database import StoreBusy, StoreError
from suggester.records.store import ArticleVersion, Store
from suggester.search.index import Indexer
from suggester.settings import Settings

if TYPE_CHECKING:
    from suggester.replicate import Replica

log = logging.getLogger(__name__)

# Test hook for the crash-during-publish tests: "SECONDS" sleeps between the history entry and
# the file replace; "POINT:SECONDS" sleeps at one of PAUSE_POINTS instead. While it sleeps,
# data_dir/PAUSE_MARKER names the point, so a test knows when to kill the server. Deliberately
# not a documented setting.
TEST_DELAY_ENV = "SUGGESTER_TEST_PUBLISH_DELAY"
PAUSE_POINTS = ("staged", "recorded", "replaced", "dense-written")
PAUSE_MARKER = "test-publish-paused"
RECOVERY_AUTHOR = "recovery"  # author of a file's state recorded after an interrupted publish
BASELINE_AUTHOR = "kb-file"  # author of a file's state recorded before its first edit here
_STATUS_BY_ACTION = {"publish": "published", "restore": "published", "draft": "draft",
                     "archive": "archived"}
_ACTION_BY_STATUS = {"published": "publish", "draft": "draft", "archived": "archive"}


class LintFailed(PublishError):
    """The new source has lint errors; `findings` lists them with path:line."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        errors = [f for f in findings if f.severity == ERROR]
        lines = "; ".join(str(f) for f in errors[:5])
        super().__init__(f"{len(errors)} lint error(s), nothing saved: {lines}",
                         f"문서 검사 오류 {len(errors)}건이 있어 저장하지 않았습니다. "
                         "표시된 줄을 고친 뒤 다시 시도하세요.")


class EditConflict(PublishError):
    """The file changed since the editor opened it."""


class ArticleNotFound(PublishError):
    """No article file has the given id."""


@dataclass(frozen=True, kw_only=True)
class SaveResult:
    article_id: str
    path: Path
    action: str
    version: int
    history_id: int
    file_written: bool
    warnings: list[Finding] = field(default_factory=list)
    generation: int = 0
    index_error: str = ""


@dataclass(frozen=True, kw_only=True)
class _Change:
    """A save that passed every check and is ready to be recorded and written."""

    action: str
    target: Path
    source: str
    version: int
    author: str
    current: Article | None
    has_history: bool
    warnings: list[Finding]
    history_only: bool

    def result(self, *, history_id: int, file_written: bool, generation: int = 0,
               index_error: str = "") -> SaveResult:
        return SaveResult(article_id=self.target.stem, path=self.target, action=self.action,
                          version=self.version, history_id=history_id,
                          file_written=file_written, warnings=self.warnings,
                          generation=generation, index_error=index_error)


def source_hash(source: str) -> str:
    """The fingerprint an edit form carries, to detect a concurrent change on save."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


class Publisher:
    """Save, publish, archive and restore articles safely; one per app (thread-safe)."""

    def __init__(self, settings: Settings, store: Store, *, indexer: Indexer | None = None,
                 lock_timeout: float = 30.0, replica: Replica | None = None) -> None:
        self.settings = settings
        self.store = store
        self._indexer = indexer
        self.lock_timeout = lock_timeout
        self.replica = replica  # with a shared database: catch up with other hosts first

    @property
    def indexer(self) -> Indexer:
        if self._indexer is None:
            self._indexer = Indexer(self.settings)
        return self._indexer

    # -- the four actions --------------------------------------------------------------------

    def publish(self, source: str, *, author: str, article_id: str | None = None,
                base: str | None = None) -> SaveResult:
        """Publish `source` as the article's next version (`article_id=None`: a new article)."""
        return self._save("publish", source, author=author, article_id=article_id, base=base)

    def save_draft(self, source: str, *, author: str, article_id: str | None = None,
                   base: str | None = None) -> SaveResult:
        """Keep `source` as a draft: never served, no version bump."""
        return self._save("draft", source, author=author, article_id=article_id, base=base)

    def archive(self, article_id: str, *, author: str, base: str | None = None) -> SaveResult:
        """Stop serving an article by setting `status: archived`; the file stays."""
        current = self._existing(article_id)
        return self._save("archive", current.source, author=author, article_id=article_id,
                          base=base)

    def restore(self, article_id: str, history_id: int, *, author: str) -> SaveResult:
        """Publish an older version's source again, as a new version."""
        self._existing(article_id)
        old = self.store.article_version(article_id, history_id)
        return self._save("restore", old.source, author=author, article_id=article_id,
                          base=None)

    # -- reading -----------------------------------------------------------------------------

    def check(self, source: str, *, article_id: str | None = None,
              others: list[Article] | None = None) -> list[Finding]:
        """Lint `source` as it would be published, where it would be saved; never raises.

        `others` is the KB as `others()` reads it, for a caller that needs it too.
        """
        source = normalise(source)
        try:
            target = self._target(source, article_id)
        except LintFailed as exc:
            return exc.findings
        final = set_front_matter(source, status="published")
        return lint_source(final, target, self.others() if others is None else others,
                           today=dt.date.today())

    def pending_draft(self, article_id: str) -> ArticleVersion | None:
        """A draft saved to history while the file still serves the published version."""
        path = find_article_path(self.settings.kb_dir, article_id)
        history = self.store.article_history(article_id)
        if path is None or not history or history[-1].action != "draft":
            return None
        try:
            status = read_article(path).status
        except ArticleError:
            return None
        return history[-1] if status != "draft" else None

    # -- internals ---------------------------------------------------------------------------

    def _existing(self, article_id: str) -> Article:
        path = find_article_path(self.settings.kb_dir, article_id) \
            if ARTICLE_ID.fullmatch(article_id) else None
        if path is None:
            raise ArticleNotFound(f"no article has id {article_id!r}",
                                  f"'{article_id}' 문서를 찾을 수 없습니다.")
        try:
            return read_article(path)
        except ArticleError as exc:
            raise LintFailed([Finding(path=exc.path, line=exc.line, severity=ERROR,
                                      message=exc.message)]) from exc

    def _save(self, action: str, source: str, *, author: str, article_id: str | None,
              base: str | None) -> SaveResult:
        with publish_lock(self.settings, timeout=self.lock_timeout), self._hosts_lock():
            if self.replica is not None:
                # Another host may have published this article a moment ago: bring the file
                # up to date, so the edit-conflict check and the version see that publish.
                self.replica.apply()
            change = self._prepare(action, normalise(source), author, article_id, base)
            if change.history_only:
                return change.result(history_id=self._record_change(change), file_written=False)
            history_id = self._write(change.target, change.source,
                                     lambda: self._record_change(change))
            generation, index_error = self._reindex(change.target)
        return change.result(history_id=history_id, file_written=True, generation=generation,
                             index_error=index_error)

    @contextlib.contextmanager
    def _hosts_lock(self) -> Iterator[None]:
        """One publish at a time across every app server sharing the database."""
        try:
            with self.store.exclusive("publish", timeout=self.lock_timeout):
                yield
        except StoreBusy as exc:
            raise PublishBusy(str(exc), "다른 서버에서 게시 작업이 진행 중입니다. 잠시 후 다시 "
                                        "시도하세요.") from exc

    def _prepare(self, action: str, source: str, author: str, article_id: str | None,
                 base: str | None) -> _Change:
        """Check everything that can refuse the save, before anything is written."""
        target = self._target(source, article_id)
        current = _read_current(target)
        if base is not None and current is not None and source_hash(current.source) != base:
            raise EditConflict(
                f"{target.name} changed since you opened it; reload and apply your edit",
                "다른 사람이 먼저 이 문서를 바꿨습니다. 새로 고친 뒤 수정 내용을 다시 적용하세요.")
        history = self.store.article_history(target.stem)
        requested = parse_article(source, target).version
        version = _version_for(action, current, history, requested)
        final = set_front_matter(source, status=_STATUS_BY_ACTION[action], version=version)
        findings = lint_source(final, target, self.others(), today=dt.date.today())
        if any(f.severity == ERROR for f in findings):
            raise LintFailed(findings)
        # A draft must not replace what agents are served: it waits in history until published.
        history_only = action == "draft" and current is not None \
            and current.status == "published"
        return _Change(action=action, target=target, source=final, version=version,
                       author=author, current=current, has_history=bool(history),
                       warnings=findings, history_only=history_only)

    def _record_change(self, change: _Change) -> int:
        article_id = change.target.stem
        if change.current is not None and not change.has_history:
            # Articles that came with the repository have no history yet: keep the file's
            # state first, so the version being replaced can be diffed and restored too.
            current = change.current
            self._record(article_id, current.version, BASELINE_AUTHOR,
                         _ACTION_BY_STATUS.get(current.status, "draft"), current.source)
        return self._record(article_id, change.version, change.author, change.action,
                            change.source)

    def _target(self, source: str, article_id: str | None) -> Path:
        """Where `source` belongs: its type folder and id; the id and type of an article stay."""
        kb_dir = self.settings.kb_dir
        placeholder = kb_dir / f"{article_id or 'new-article'}.md"
        try:
            meta = parse_article(source, placeholder).meta
        except ArticleError as exc:
            raise LintFailed([Finding(path=exc.path, line=exc.line, severity=ERROR,
                                      message=exc.message)]) from exc
        new_id, new_type = meta.get("id"), meta.get("type")
        problem = _identity_problem(new_id, new_type, article_id)
        existing = find_article_path(kb_dir, str(new_id)) if problem is None else None
        if problem is None and article_id is None and existing is not None:
            problem = ("id", f"id '{new_id}' is already used by {existing}: choose another id")
        if problem is None and existing is not None and existing.parent.name != new_type:
            problem = ("type", f"type cannot change from '{existing.parent.name}' to "
                               f"'{new_type}': create a new article and archive this one")
        if problem:
            key, message = problem
            raise LintFailed([Finding(path=placeholder, line=_field_line(source, key),
                                      severity=ERROR, message=message)])
        return kb_dir / str(new_type) / f"{new_id}.md"

    def others(self) -> list[Article]:
        """Every article of the KB that parses (the rest are lint's to report)."""
        others = []
        for path in discover(self.settings.kb_dir):
            with contextlib.suppress(ArticleError):
                others.append(read_article(path))
        return others

    def _record(self, article_id: str, version: int, author: str, action: str,
                source: str) -> int:
        try:
            return self.store.record_article_version(article_id, version=version,
                                                     author=author, action=action, source=source)
        except (sqlite3.Error, StoreError) as exc:  # e.g. a read-only data dir
            raise WriteFailed(
                f"cannot record the version in {self.store.location} ({exc}); nothing was "
                "changed",
                "편집 이력을 기록하지 못해 저장하지 않았습니다(데이터 폴더가 읽기 전용이거나 "
                "가득 참). 관리자에게 확인을 요청하세요.") from exc

    def _write(self, target: Path, text: str, record: Callable[[], int]) -> int:
        try:
            with staged_write(target, text) as commit:
                self._pause("staged")
                history_id = record()
                self._pause("recorded")
                commit()
                self._pause("replaced")
        except OSError as exc:
            raise write_error(exc, target) from exc
        return history_id

    def _pause(self, point: str) -> None:
        _test_pause(self.settings, point)

    def _reindex(self, target: Path) -> tuple[int, str]:
        # The file is saved and is the source of truth: an index failure is reported, not
        # raised, so the editor knows the save happened and what to run.
        try:
            return self.indexer.sync(only=[target], checkpoint=self._pause).generation, ""
        except Exception as exc:  # noqa: BLE001 - Chroma and bm25s raise many types
            log.exception("re-indexing %s failed", target)
            return 0, (f"saved, but re-indexing failed ({exc}): run `suggester index` "
                       "(저장은 되었지만 색인 갱신에 실패했습니다 — "
                       "`suggester index`를 실행하세요)")


def normalise(source: str) -> str:
    """Text as it is stored: LF line ends (browsers send CRLF) and one final newline."""
    text = source.replace("\r\n", "\n").replace("\r", "\n").removeprefix("\ufeff")
    return text.rstrip("\n") + "\n"


def set_front_matter(source: str, **values: object) -> str:
    """Set simple front matter fields in place, keeping every other line as written."""
    lines = source.split("\n")
    closing = next(i for i in range(1, len(lines)) if lines[i].rstrip() == "---")
    for key, value in values.items():
        pattern = re.compile(rf"^{re.escape(key)}\s*:")
        index = next((i for i in range(1, closing) if pattern.match(lines[i])), None)
        if index is None:
            lines.insert(closing, f"{key}: {value}")
            closing += 1
        else:
            lines[index] = f"{key}: {value}"
    return "\n".join(lines)


def _identity_problem(new_id: object, new_type: object,
                      article_id: str | None) -> tuple[str, str] | None:
    """The front matter field that makes `source` unsavable here, and why."""
    if not isinstance(new_id, str) or not ARTICLE_ID.fullmatch(new_id):
        return "id", f"id {new_id!r} must be a slug of lowercase letters, digits and hyphens"
    if article_id is not None and new_id != article_id:
        return "id", f"id cannot change from '{article_id}' to '{new_id}': create a new article"
    if new_type not in ARTICLE_TYPES:
        return "type", f"type {new_type!r} is not one of: {', '.join(ARTICLE_TYPES)}"
    return None


def _field_line(source: str, key: str) -> int:
    for number, line in enumerate(source.split("\n"), start=1):
        if line.startswith(f"{key}:"):
            return number
    return 1


def _read_current(path: Path) -> Article | None:
    """The article file as it is now; None when absent or unreadable (the save repairs it)."""
    try:
        return read_article(path) if path.exists() else None
    except ArticleError:
        return None


def _version_for(action: str, current: Article | None, history: list[ArticleVersion],
                 requested: int) -> int:
    """Publishing bumps past every version ever published; drafts and archiving keep it.

    `requested` (the source's own version) counts only when there is nothing to go by: a new
    article, or a file too broken to read.
    """
    if action in ("draft", "archive"):
        return current.version if current else requested
    published = [h.version for h in history if h.action in ("publish", "restore", "archive")]
    if current is not None and current.status != "draft":
        published.append(current.version)
    if not published:  # the first publish of a new article keeps its draft's version
        return current.version if current else requested
    return max(published) + 1


def remove_stale_staging(settings: Settings) -> int:
    """Delete temp files a crashed publish left beside the articles; return how many.

    Safe at any time: it holds the publish lock, so no live publish owns such a file.
    """
    with publish_lock(settings):
        return _remove_staging(settings)


def _remove_staging(settings: Settings) -> int:
    removed = 0
    for leftover in settings.kb_dir.glob(f"*/.*{STAGING_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
            removed += 1
    return removed


@dataclass(frozen=True, kw_only=True)
class Recovery:
    """What `recover` found and did."""

    staging_removed: int
    history_recorded: list[str]
    index_repaired: list[str]
    index_error: str = ""

    def summary(self) -> str:
        parts = []
        if self.staging_removed:
            parts.append(f"removed {self.staging_removed} staging file(s) of an interrupted "
                         "publish")
        if self.history_recorded:
            parts.append("recorded the served version of "
                         f"{', '.join(self.history_recorded)} after an interrupted publish")
        if self.index_repaired:
            parts.append(f"re-synced the index ({len(self.index_repaired)} difference(s), "
                         f"e.g. {self.index_repaired[0]})")
        if self.index_error:
            parts.append(f"index not checked: {self.index_error}")
        return "start-up check: " + ("; ".join(parts) or
                                     "the articles, their history and the index agree")


def recover(settings: Settings, store: Store, *, indexer: Indexer | None = None) -> Recovery:
    """Put the KB back in order after a crash, before serving; see the module docstring.

    Deletes staging files, ends each article's history with the version its file holds, and
    re-syncs the index where it differs from the files. Holds the publish lock throughout.
    An index that cannot be checked (Chroma unreachable) is logged, not raised: suggestions
    fall back to BM25, and stopping the server would help no one.
    """
    index_error = ""
    repaired: list[str] = []
    with publish_lock(settings):
        removed = _remove_staging(settings)
        recorded = list(_record_served_versions(settings, store))
        try:
            repaired = (indexer or Indexer(settings)).repair()
        except Exception as exc:  # noqa: BLE001 - Chroma raises many types; serving goes on
            index_error = str(exc)
            log.warning("start-up index check skipped: %s", exc)
    for article_id in recorded:
        log.warning("%s: its last history entry was never written to the file (a publish was "
                    "interrupted); recorded the file's version after it", article_id)
    return Recovery(staging_removed=removed, history_recorded=recorded,
                    index_repaired=repaired, index_error=index_error)


def _record_served_versions(settings: Settings, store: Store) -> Iterator[str]:
    """Append the file's state where an article's last history entry is not the file."""
    latest = store.latest_versions()  # one query, not one per article, at start-up
    for path in discover(settings.kb_dir):
        last = latest.get(path.stem)
        if last is None:
            continue  # nothing published here yet: the file is its own history
        try:
            article = read_article(path)
        except ArticleError:
            continue  # lint and the editor show a broken file; publishing it repairs it
        pending_draft = last.action == "draft" and article.status != "draft"
        if last.source == article.source or pending_draft:
            continue
        store.record_article_version(path.stem, version=article.version,
                                     author=RECOVERY_AUTHOR,
                                     action=_ACTION_BY_STATUS.get(article.status, "draft"),
                                     source=article.source)
        yield path.stem


def _test_pause(settings: Settings, point: str) -> None:
    raw = os.environ.get(TEST_DELAY_ENV, "")
    if not raw:
        return
    wanted, _, seconds = raw.rpartition(":")
    if (wanted or "recorded") != point:
        return
    with contextlib.suppress(ValueError):
        if float(seconds) > 0:
            (settings.data_dir / PAUSE_MARKER).write_text(point, encoding="utf-8")
            time.sleep(float(seconds))
