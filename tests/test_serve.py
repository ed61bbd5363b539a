"""`suggester serve --prod`: gunicorn with several workers, each answering from the index."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import free_port

pytestmark = pytest.mark.slow


def wait_for(url: str, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.load(response)
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def test_production_server_runs_workers_that_answer(shipped_settings, tmp_path):
    port = free_port()
    command = [str(Path(sys.executable).with_name("suggester")), "--data-dir",
               str(shipped_settings.data_dir), "--kb-dir", str(shipped_settings.kb_dir),
               "serve", "--prod", "--port", str(port), "--workers", "2"]
    environment = {"SUGGESTER_DATABASE": str(tmp_path / "prod.sqlite3"),
                   "SUGGESTER_CACHE_DIR": str(shipped_settings.cache_path.parent),
                   "PATH": "/usr/bin:/bin"}
    server = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        health = wait_for(f"http://127.0.0.1:{port}/api/health", 120)
        assert health["status"] == "ok"
        workers = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True,
                                 text=True).stdout.split()
        assert len(workers) == 2
        answers = [post_json(f"http://127.0.0.1:{port}/api/suggest",
                             {"inquiry": "정산은 언제 들어와요?"}) for _ in range(4)]
        assert all(a["draft"]["grounded"] for a in answers)
        assert {a["draft"]["citations"][0]["article_id"] for a in answers} == {
            "settlement-schedule"}
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    assert "with 2 gunicorn workers" in output
    assert "Traceback" not in output


class Session:
    """A browser-like HTTP session (cookies kept) against one server."""

    def __init__(self, base: str) -> None:
        import http.cookiejar

        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=30) as response:
            return response.read().decode()

    def post_form(self, path: str, fields: dict[str, str]) -> str:
        import urllib.parse

        data = urllib.parse.urlencode(fields).encode()
        with self.opener.open(self.base + path, data=data, timeout=60) as response:
            return response.read().decode()


def start_server(settings, port: int) -> subprocess.Popen:
    command = [str(Path(sys.executable).with_name("suggester")), "--data-dir",
               str(settings.data_dir), "--kb-dir", str(settings.kb_dir), "serve", "--port",
               str(port)]
    environment = {"SUGGESTER_CACHE_DIR": str(settings.cache_path.parent), "PATH": "/usr/bin:/bin"}
    return subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def test_a_publish_on_one_server_is_seen_by_another(tmp_path):
    import html
    import re
    import shutil

    from suggester.index import Indexer
    from suggester.store import Store

    from conftest import SHIPPED_KB, form_token, make_settings

    shutil.copytree(SHIPPED_KB, tmp_path / "kb")
    settings = make_settings(tmp_path / "data", tmp_path / "kb")
    Indexer(settings).sync()
    Store(settings.database_path).add_user("editor", "editor-password", role="editor")
    ports = free_port(), free_port()
    servers = [start_server(settings, port) for port in ports]
    try:
        for port in ports:
            wait_for(f"http://127.0.0.1:{port}/api/health", 120)
        question = {"inquiry": "판매 수수료는 몇 퍼센트예요?", "audience": "seller"}
        before = post_json(f"http://127.0.0.1:{ports[1]}/api/suggest", question)
        assert "5%" in before["draft"]["text"]

        editor = Session(f"http://127.0.0.1:{ports[0]}")
        editor.post_form("/login", {"username": "editor", "password": "editor-password",
                                    "csrf_token": form_token(editor.get("/login")), "next": "/"})
        page = editor.get("/editor/selling-fees/edit")
        source = html.unescape(re.search(r"<textarea[^>]*>(.*?)</textarea>", page, re.S)[1])
        base = re.search(r'name="base" value="([^"]*)"', page)[1]
        editor.post_form("/editor/selling-fees/save", {
            "csrf_token": form_token(page), "base": base, "action": "publish",
            "source": source.replace("5%", "7%")})

        after = post_json(f"http://127.0.0.1:{ports[1]}/api/suggest", question)
        assert "7%" in after["draft"]["text"] and "5%" not in after["draft"]["text"]
        cited = {c["article_id"]: c["version"] for c in after["draft"]["citations"]}
        assert cited["selling-fees"] > {c["article_id"]: c["version"]
                                        for c in before["draft"]["citations"]}["selling-fees"]
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
