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
