"""Shared fixtures: a clean environment, the small test KB and a helper to write articles."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# The tests import these from here; the load harness needs them too.
from suggester.evaluation.serving import form_token, free_port  # noqa: F401
from suggester.search.index import Indexer
from suggester.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SHIPPED_KB = ROOT / "kb" / "articles"
# Vectors are cached by content hash across test runs: the first run embeds the shipped KB
# (~100 s on 2 cores), later runs only what changed.
TEST_CACHE = ROOT / ".cache" / "tests"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true",
                     help="also run the tests marked `long` (the full fuzzing tier)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the `long` tier unless asked for: `make test` runs the short form of each fuzzer."""
    if config.getoption("--long") or os.environ.get("SUGGESTER_LONG_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="long tier: run `make test-long` (pytest --long -m long)")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)


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


def make_settings(data_dir: Path, kb_dir: Path, **overrides: object) -> Settings:
    return load_settings({"data_dir": data_dir, "kb_dir": kb_dir, "cache_dir": TEST_CACHE,
                          **overrides}, environ={})


@pytest.fixture(scope="session")
def shipped_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of an index of the shipped KB, built once per test run (read-only for tests).

    Built with the article files listed in reverse order, and cold on a fresh clone (every
    vector computed now): tests/test_determinism.py builds another one in order from the
    vector cache and expects the same answers from both.
    """
    from suggester.search import index

    settings = make_settings(tmp_path_factory.mktemp("shipped-index"), SHIPPED_KB)
    listing = index.discover
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(index, "discover", lambda kb_dir: listing(kb_dir)[::-1])
        Indexer(settings).sync()
    return settings


@pytest.fixture(scope="session")
def shipped_retriever(shipped_settings: Settings):
    from suggester.search.retrieve import Retriever

    return Retriever(shipped_settings)


@pytest.fixture
def small_settings(small_kb: Path, tmp_path: Path) -> Settings:
    """Settings for an index of the small KB in a fresh data dir."""
    return make_settings(tmp_path / "data", small_kb)


@contextlib.contextmanager
def running_chroma(path: Path, port: int) -> Iterator[tuple[str, int]]:
    """A real `chroma run` server on a loopback port, stopped on exit."""
    executable = Path(sys.executable).with_name("chroma")
    log = (path / "server.log").open("a")
    process = subprocess.Popen([str(executable), "run", "--path", str(path), "--host",
                                "127.0.0.1", "--port", str(port)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"chroma run exited: {(path / 'server.log').read_text()}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError("chroma run did not start listening within 60 s")
        yield "127.0.0.1", port
    finally:
        stop_process(process)
        log.close()


def stop_process(process: subprocess.Popen, seconds: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it is still running after `seconds`; reaped either way."""
    process.terminate()
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """One Chroma server for the whole session."""
    with running_chroma(tmp_path_factory.mktemp("chroma-server"), free_port()) as address:
        yield address


@pytest.fixture(scope="session")
def postgres_server():
    """One real PostgreSQL server for the whole session (see tests/postgres.py)."""
    from postgres import find_binaries, running_postgres

    if find_binaries() is None:
        pytest.skip("PostgreSQL is not installed: `make test` installs it "
                    "(scripts/install-postgres.sh), or run `apt-get install postgresql`")
    with running_postgres(free_port()) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """The URL of a new, empty PostgreSQL database on the session's server."""
    return postgres_server.new_database()


@pytest.fixture(scope="session")
def shipped_suggester(shipped_settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    """One Suggester over the shipped index, logging to its own SQLite file."""
    from suggester.records.store import Store
    from suggester.service import Suggester

    store = Store(tmp_path_factory.mktemp("db") / "suggester.sqlite3")
    return Suggester(shipped_settings, store=store)


@pytest.fixture
def app(shipped_settings: Settings, tmp_path: Path):
    """The Flask app over the shipped index with a fresh database per test."""
    from dataclasses import replace

    from web import create_app

    settings = replace(shipped_settings, database=tmp_path / "app.sqlite3")
    return create_app({"TESTING": True}, settings=settings)


@pytest.fixture
def client(app):
    return app.test_client()


# -- signing in (web/auth.py) -------------------------------------------------------------

PASSWORDS = {"agent": "agent-password", "editor": "editor-password", "admin": "admin-password"}


def add_users(app) -> None:
    """One user per role, named after the role (passwords in PASSWORDS)."""
    store = app.extensions["suggester.store"]
    for role, password in PASSWORDS.items():
        store.add_user(role, password, role=role)


def add_token(app, name: str = "script", role: str = "agent", **kwargs: object) -> str:
    """Make an API token in the app's database; return its secret."""
    from suggester.records.access import AccessRecords

    return AccessRecords(app.extensions["suggester.store"]).add_token(name, role=role,
                                                                      **kwargs)[1]


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def api_client(app):
    """A client that sends an `agent` API token with every request."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {add_token(app, 'api-client')}"
    return client


def console_csrf(client) -> str:
    """The CSRF token the console page gives its script (for a signed-in client's API calls)."""
    import re

    page = client.get("/").get_data(as_text=True)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert match, "the console page has no CSRF token: is the client signed in?"
    return match[1]


def sign_in(client, username: str, password: str | None = None):
    """Sign in through the login form, as a browser would; return the response."""
    token = form_token(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": username,
                                       "password": password or PASSWORDS[username],
                                       "csrf_token": token, "next": "/"})


# -- real servers (suggester.evaluation.serving) --------------------------------------------


@pytest.fixture
def served_kb(shipped_settings: Settings, tmp_path: Path) -> Settings:
    """Copies of the shipped KB and its index, with an `editor` user, to serve and publish.

    For tests that start `suggester serve --prod`: publishes change these copies, never the
    repository's kb/articles or the session's shipped index.
    """
    return copy_served_kb(shipped_settings, tmp_path)


def copy_served_kb(shipped_settings: Settings, root: Path) -> Settings:
    """`served_kb` under `root`, for fixtures of a wider scope than one test."""
    from suggester.records.store import Store

    shutil.copytree(SHIPPED_KB, root / "kb")
    shutil.copytree(shipped_settings.data_dir, root / "data",
                    ignore=shutil.ignore_patterns("suggester.sqlite3*", "publish.lock"))
    settings = make_settings(root / "data", root / "kb")
    with Store(settings.database_path) as store:
        store.add_user("editor", PASSWORDS["editor"], role="editor")
    return settings
