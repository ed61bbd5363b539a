"""Helpers the browser tests share: the live server, signing in, screenshots."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from flask import Flask

from suggester.records.store import Store

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
AGENT = ("agent-browser", "agent-password-1")
VIEWPORT = {"width": 1366, "height": 768}


@dataclass
class LiveServer:
    url: str
    app: Flask
    store: Store


@contextlib.contextmanager
def serve(app: Flask) -> Iterator[LiveServer]:
    """Serve `app` on a free loopback port in a thread until exit (its own CSP applies)."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(url=f"http://127.0.0.1:{server.server_port}", app=app,
                         store=app.extensions["suggester.store"])
    finally:
        server.shutdown()
        thread.join(timeout=10)


def log_in(page, live_server: LiveServer, *, role: str = "agent") -> None:
    """Sign in when the app has a login page; until web/auth.py lands there is none.

    Fill in the field names here once the login form exists: the rest of the tests call only
    this helper.
    """
    response = page.request.get(f"{live_server.url}/login")
    if response.status == 404:
        return
    username, password = AGENT if role == "agent" else (f"{role}-browser", f"{role}-password-1")
    if live_server.store.get_user(username) is None:
        live_server.store.add_user(username, password, role=role)
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/ for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
