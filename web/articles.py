"""Articles rendered for agents: sanitised HTML per section, internal sections marked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

from suggester.errors import ArticleError
from suggester.knowledge.articles import Section, find_article_path, read_article

# html=False: raw HTML in an article is shown as text, never executed (<script> stays inert).
_renderer = MarkdownIt("commonmark", {"html": False, "linkify": False})
_SAFE_LINK = ("http://", "https://", "/", "#", "mailto:")


def _validate_link(url: str) -> bool:
    return url.strip().lower().startswith(_SAFE_LINK)


_renderer.validateLink = _validate_link


def render_markdown(text: str) -> str:
    return _renderer.render(text)


def render_article(kb_dir: Path, article_id: str) -> dict[str, Any] | None:
    path = find_article_path(kb_dir, article_id)
    if path is None:
        return None
    try:
        article = read_article(path)
    except ArticleError:
        return None
    return {
        "id": article.id, "title": article.title, "type": article.type,
        "audience": article.audience, "category": article.category, "status": article.status,
        "version": article.version,
        "effective_from": article.effective_from.isoformat() if article.effective_from else None,
        "sections": [_section(s) for s in article.walk()],
    }


def _section(section: Section) -> dict[str, Any]:
    return {"title": section.title, "path": list(section.path), "level": section.level,
            "internal": section.internal, "lines": [section.line, section.end_line],
            "html": render_markdown(section.markdown)}
