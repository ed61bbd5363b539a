"""Bring this host's articles and index up to date with publishes made on other app servers.

Several app servers share one PostgreSQL (suggestions, users, article history) and one Chroma
server, but each keeps its own copy of the article files and its own BM25 index under its
data dir. The article history is the shared record: every entry holds the full source, and
every entry bumps the one-row `kb_revision` in the same transaction. One `Replica` per process:

1. polls `kb_revision` from a background thread every `POLL_SECONDS` (one single-row query;
   requests never wait on it and never touch the database for it);
2. when the number moved, under this host's publish lock, compares each article's newest
   history id with those this data dir has applied (`data_dir/replica.json`), works out what
   each changed article's file must hold — the rule the publisher follows: the latest entry,
   except that a draft of a published article waits in history — writes the files that differ
   (temp file, fsync, rename) and re-indexes only those articles. The BM25 generation pointer
   then carries the change to every worker on this host, as a local publish does.

Shared Chroma: chunk ids are `article-id#section-path` and a chunk's fingerprint is a hash of
its text and metadata, so when a second host syncs an article the first already wrote, it finds
nothing to write; an article-scoped sync deletes only that article's stale ids, which the host
that archived or edited it has already deleted. A local file whose `version` is newer than the
shared history is left alone (and `publish.recover` records it at the next start), so a host
never rolls an article back.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from suggester.errors import ArticleError
from suggester.knowledge.articles import (
    ARTICLE_ID,
    ARTICLE_TYPES,
    Article,
    find_article_path,
    parse_article,
    read_article,
)
from suggester.knowledge.files import write_atomically
from suggester.publish_lock import publish_lock
from suggester.records.store import ArticleVersion, Store
from suggester.search.index import Indexer, read_generation
from suggester.settings import Settings

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
STATE_FILE = "replica.json"
_SERVED_BY = {"publish": "published", "restore": "published", "archive": "archived",
              "draft": "draft"}


@dataclass(kw_only=True)
class CatchUp:
    """What one catch-up did."""

    revision: int
    written: list[str] = field(default_factory=list)  # articles whose file was replaced
    kept: list[str] = field(default_factory=list)  # local files newer than the history
    reindexed: int = 0  # articles re-synced into the index
    generation: int = 0

    def summary(self) -> str:
        if not self.written and not self.kept:
            return f"shared articles: up to date (revision {self.revision})"
        text = (f"shared articles: caught up with revision {self.revision}, "
                f"{len(self.written)} file(s) written")
        if self.written:
            text += f" ({', '.join(self.written[:5])}{'…' if len(self.written) > 5 else ''})"
        if self.kept:
            text += f"; kept {len(self.kept)} local file(s) newer than the shared history"
        return text


def served_version(history: Sequence[ArticleVersion]) -> ArticleVersion | None:
    """The entry an article's file holds after these history entries (oldest first)."""
    served: ArticleVersion | None = None
    for entry in history:
        if entry.action == "draft" and served is not None and \
                _SERVED_BY[served.action] == "published":
            continue  # a draft of a published article is kept in history only
        served = entry
    return served


class Replica:
    """Keep one data dir's article files and index in step with the shared history."""

    def __init__(self, settings: Settings, store: Store, *, indexer: Indexer | None = None,
                 poll_seconds: float = POLL_SECONDS, lock_timeout: float = 30.0) -> None:
        self.settings = settings
        self.store = store
        self._indexer = indexer
        self.poll_seconds = poll_seconds
        self.lock_timeout = lock_timeout
        self._seen = -1  # the revision this process last caught up with
        self._poller_pid = 0
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self._last_error = ""

    @property
    def indexer(self) -> Indexer:
        if self._indexer is None:
            self._indexer = Indexer(self.settings)
        return self._indexer

    @property
    def state_path(self) -> Path:
        return self.settings.data_dir / STATE_FILE

    # -- polling ------------------------------------------------------------------------------

    def ensure_polling(self) -> None:
        """Start the background poller in this process, once (again after a fork)."""
        if self._poller_pid == os.getpid():
            return
        with self._start_lock:
            if self._poller_pid == os.getpid():
                return
            self._poller_pid = os.getpid()
            self._stop.clear()
            threading.Thread(target=self._poll_forever, name="suggester-replica",
                             daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def poll(self) -> CatchUp | None:
        """Catch up when the shared revision moved since the last look; never raises."""
        try:
            if self.store.kb_revision() == self._seen:
                return None
            result = self.catch_up()
        except Exception as exc:  # noqa: BLE001 - keep polling whatever broke this once
            if str(exc) != self._last_error:  # once per distinct problem, not every second
                log.warning("could not catch up with the shared articles: %s", exc)
            self._last_error = str(exc)
            return None
        self._last_error = ""
        if result.written or result.kept:
            log.info("%s", result.summary())
        return result

    def _poll_forever(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.poll()

    # -- catching up --------------------------------------------------------------------------

    def catch_up(self) -> CatchUp:
        """Take this host's publish lock and apply what other hosts published."""
        with publish_lock(self.settings, timeout=self.lock_timeout):
            return self.apply()

    def apply(self) -> CatchUp:
        """Apply what other hosts published; the caller holds this host's publish lock."""
        revision = self.store.kb_revision()
        state_revision, applied = self._load_state()
        if revision == state_revision:
            self._seen = revision
            return CatchUp(revision=revision)
        result = CatchUp(revision=revision)
        changed: dict[str, Path] = {}
        for article_id, newest in sorted(self.store.latest_history_ids().items()):
            if applied.get(article_id) == newest:
                continue
            path, outcome = self._materialise(article_id, self.store.article_history(article_id))
            if outcome == "written":
                result.written.append(article_id)
            elif outcome == "kept":
                result.kept.append(article_id)
            if path is not None:
                changed[article_id] = path
            applied[article_id] = newest
        # With no index yet (a new host), `suggester index` builds the whole of it: an
        # article-scoped sync would make a generation holding only these articles.
        if changed and read_generation(self.settings):
            report = self.indexer.sync(only=list(changed.values()))
            result.reindexed, result.generation = len(changed), report.generation
        self._save_state(revision, applied)  # only once the index has them too
        self._seen = revision
        return result

    def _materialise(self, article_id: str,
                     history: Sequence[ArticleVersion]) -> tuple[Path | None, str]:
        """Make the article's file hold its served version; say what was done."""
        wanted = served_version(history)
        if wanted is None or not ARTICLE_ID.fullmatch(article_id):
            return None, "skipped"
        path = find_article_path(self.settings.kb_dir, article_id)
        if path is None:
            path = self._new_path(article_id, wanted)
            if path is None:
                return None, "skipped"
        current = _read(path)
        if current is not None and current.source == wanted.source:
            return path, "same"
        if current is not None and current.version > wanted.version:
            log.warning("%s: the local file (version %d) is newer than the shared history "
                        "(version %d); keeping it", path, current.version, wanted.version)
            return path, "kept"
        write_atomically(path, wanted.source)
        return path, "written"

    def _new_path(self, article_id: str, wanted: ArticleVersion) -> Path | None:
        placeholder = self.settings.kb_dir / f"{article_id}.md"
        try:
            kind = parse_article(wanted.source, placeholder).meta.get("type")
        except ArticleError as exc:
            log.warning("history entry %d of %s cannot be parsed (%s); not written",
                        wanted.id, article_id, exc)
            return None
        if kind not in ARTICLE_TYPES:
            return None
        return self.settings.kb_dir / str(kind) / f"{article_id}.md"

    # -- what this data dir has applied -------------------------------------------------------

    def _load_state(self) -> tuple[int, dict[str, int]]:
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            return int(state["revision"]), {str(k): int(v) for k, v in state["applied"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return -1, {}  # none yet, or unreadable: compare every article again

    def _save_state(self, revision: int, applied: dict[str, int]) -> None:
        text = json.dumps({"revision": revision, "applied": applied, "saved_at": time.time()},
                          sort_keys=True)
        write_atomically(self.state_path, text + "\n")


def _read(path: Path) -> Article | None:
    try:
        return read_article(path) if path.exists() else None
    except ArticleError:
        return None  # a broken file is replaced by the served version
