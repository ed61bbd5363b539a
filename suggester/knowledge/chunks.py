"""Cut an `Article` into retrievable chunks along its section tree.

One chunk per section with text of its own (an anticipated question becomes one chunk of
question + answer); a long section is split on paragraph boundaries. Each chunk carries the
metadata citations and filters need, and two hashes: `content_hash` of the text that is
embedded (the key of the vector cache) and `fingerprint` of text + metadata (what the index
compares to decide whether a chunk changed).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields, replace
from functools import cached_property
from typing import Any

from suggester.knowledge.articles import (
    EXCEPTIONS,
    FOLLOW_UPS,
    GUIDE,
    POLICY,
    SCRIPT,
    SUMMARY,
    Article,
    Section,
)

MAX_CHUNK_CHARS = 700
PATH_SEPARATOR = " > "

# What a chunk is for: the composer picks scripts, the anticipator picks questions.
KIND_BY_SECTION = {
    SUMMARY: "summary", POLICY: "policy", GUIDE: "policy", SCRIPT: "script",
    FOLLOW_UPS: "question", EXCEPTIONS: "exception",
}


@dataclass(frozen=True, kw_only=True)
class Chunk:
    id: str
    article_id: str
    title: str
    type: str
    audience: str
    category: str
    status: str
    effective_from: str
    version: int
    section: str
    kind: str
    internal: bool
    line_start: int
    line_end: int
    text: str
    content_hash: str
    related: str = ""  # ids of related articles, comma-separated (Chroma takes scalars only)
    handles_flags: str = ""  # the risk flags the article handles, comma-separated
    # When this article's escalation rule takes a flag over (front matter `escalation_when`),
    # as JSON {flag: [conditions]}; "" for none (Chroma takes scalars only).
    escalation_when: str = ""
    flag_cues: str = ""  # cues that raise a flag (front matter `flag_cues`), JSON like the above
    not_offered: str = ""  # services we do not offer and their cues (`not_offered`), JSON
    # A published article that supersedes this one, and the day it takes over ("" for none):
    # from that day this chunk is no longer served (decided at query time, no re-index).
    successor: str = ""
    retired_from: str = ""

    @property
    def embed_text(self) -> str:
        """What the retrievers see: the title and heading path give a short section context."""
        return f"{self.title}{PATH_SEPARATOR}{self.section}\n{self.text}"

    @cached_property
    def fingerprint(self) -> str:
        return _sha(json.dumps(self.metadata(), ensure_ascii=False, sort_keys=True))

    def metadata(self) -> dict[str, Any]:
        """Flat metadata (Chroma accepts only scalars); the text travels separately."""
        return {name: getattr(self, name) for name in _METADATA_FIELDS}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Chunk:
        fields = {k: v for k, v in record.items() if k in cls.__dataclass_fields__}
        return cls(**fields)

    def to_record(self) -> dict[str, Any]:
        # Not dataclasses.asdict: its deep copy made writing 10k records take a second.
        return {name: getattr(self, name) for name in _RECORD_FIELDS}


_RECORD_FIELDS = tuple(f.name for f in fields(Chunk))
_METADATA_FIELDS = tuple(name for name in _RECORD_FIELDS if name not in ("id", "text"))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_article(article: Article, successor: Article | None = None) -> list[Chunk]:
    """Every chunk of an article, internal-only ones included and flagged; `successor` is the
    published article that supersedes it, if any."""
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for section in article.walk():
        text = _section_text(section)
        if not text or (section.top == FOLLOW_UPS and not section.is_question):
            continue
        path = PATH_SEPARATOR.join(section.path)
        for part_number, part in enumerate(split_paragraphs(text, MAX_CHUNK_CHARS)):
            base = f"{article.id}#{path}" + (f"#{part_number + 1}" if part_number else "")
            seen[base] = seen.get(base, 0) + 1
            chunk_id = base if seen[base] == 1 else f"{base}~{seen[base]}"
            chunks.append(_make_chunk(article, section, chunk_id, path, part, successor))
    return chunks


def _section_text(section: Section) -> str:
    if section.is_question:
        # The question travels with its answer: customers ask it in their own words.
        return f"Q. {section.question}\n{section.full_text()}".strip()
    return section.text.strip()


def _make_chunk(article: Article, section: Section, chunk_id: str, path: str,
                text: str, successor: Article | None = None) -> Chunk:
    effective = article.effective_from
    takes_over = successor.effective_from if successor else None
    chunk = Chunk(
        id=chunk_id,
        article_id=article.id,
        title=article.title,
        type=article.type,
        audience=article.audience,
        category=article.category,
        status=article.status,
        effective_from=effective.isoformat() if effective else "",
        version=article.version,
        section=path,
        kind="internal" if section.internal else KIND_BY_SECTION.get(section.top, "other"),
        internal=section.internal,
        line_start=section.line,
        line_end=section.end_line,
        text=text,
        content_hash="",
        related=",".join(article.related),
        handles_flags=",".join(article.handles_flags),
        escalation_when=json.dumps(article.escalation_when, ensure_ascii=False, sort_keys=True)
        if article.escalation_when else "",
        flag_cues=json.dumps(article.flag_cues, ensure_ascii=False, sort_keys=True)
        if article.flag_cues else "",
        not_offered=json.dumps(article.not_offered, ensure_ascii=False, sort_keys=True)
        if article.not_offered else "",
        successor=successor.id if successor and takes_over else "",
        retired_from=takes_over.isoformat() if takes_over else "",
    )
    return replace(chunk, content_hash=_sha(chunk.embed_text))


def split_paragraphs(text: str, limit: int) -> list[str]:
    """Split on blank lines, then lines, packing pieces up to `limit` characters."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    for paragraph in text.split("\n"):
        paragraph = paragraph.strip()
        while len(paragraph) > limit:
            cut = paragraph.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            pieces.append(paragraph[:cut].strip())
            paragraph = paragraph[cut:].strip()
        if paragraph:
            pieces.append(paragraph)
    parts: list[str] = []
    for piece in pieces:
        if parts and len(parts[-1]) + 1 + len(piece) <= limit:
            parts[-1] = f"{parts[-1]}\n{piece}"
        else:
            parts.append(piece)
    return parts


def successors(articles: list[Article]) -> dict[str, Article]:
    """The published article that supersedes each article id (lint keeps it to one)."""
    found: dict[str, Article] = {}
    for article in articles:
        if article.status == "published" and article.supersedes \
                and article.supersedes != article.id:
            found.setdefault(article.supersedes, article)
    return found
