"""The exception tree. Every message says what went wrong and what to do next.

    SuggesterError
     ├── SettingsError      a setting has a bad value
     ├── ArticleError       an article cannot be read or parsed (carries path:line)
     ├── SearchIndexError   the index is missing, stale or unreachable
     │    └── ChromaUnavailable
     └── InputError         a request or command argument is invalid
"""

from __future__ import annotations

from pathlib import Path


class SuggesterError(Exception):
    """Base class for errors shown to users."""


class SettingsError(SuggesterError):
    """A setting has a value we cannot use."""


class ArticleError(SuggesterError):
    """An article file cannot be read or parsed."""

    def __init__(self, path: Path | str, line: int, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        super().__init__(f"{self.path}:{line}: {message}")


class SearchIndexError(SuggesterError):
    """The search index is missing, stale or unreachable."""


class ChromaUnavailable(SearchIndexError):
    """The Chroma server cannot be reached."""


class InputError(SuggesterError):
    """A request or command argument is invalid.

    `code` is a stable machine-readable name; `korean` the message shown to agents.
    """

    def __init__(self, message: str, *, code: str = "invalid_input", korean: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.korean = korean or message
