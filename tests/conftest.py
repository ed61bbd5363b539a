"""Shared fixtures: a clean environment, the small test KB and a helper to write articles."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SHIPPED_KB = ROOT / "kb" / "articles"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's SUGGESTER_* variables."""
    for name in list(os.environ):
        if name.startswith("SUGGESTER_"):
            monkeypatch.delenv(name)


@pytest.fixture
def small_kb(tmp_path: Path) -> Path:
    """A writable copy of the two-article test KB."""
    target = tmp_path / "kb"
    shutil.copytree(DATA / "kb", target)
    return target


@pytest.fixture
def write_article(small_kb: Path) -> Callable[..., Path]:
    """Write `text` as an article file into the small KB and return its path."""

    def write(name: str, text: str | bytes, folder: str = "faq") -> Path:
        path = small_kb / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def article_source() -> Callable[..., str]:
    """Source of tests/data/kb/faq/refund-when.md with front matter fields changed.

    `article_source(version=3)` replaces a field's line; a value of None removes the field.
    """
    original = (DATA / "kb" / "faq" / "refund-when.md").read_text(encoding="utf-8")

    def build(**changes: object) -> str:
        lines = original.split("\n")
        for key, value in changes.items():
            index = next(i for i, line in enumerate(lines) if line.startswith(f"{key}:"))
            if value is None:
                del lines[index]
            else:
                lines[index] = f"{key}: {value}"
        return "\n".join(lines)

    return build
