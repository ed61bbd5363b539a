"""Run `suggester serve --prod` as a child process and talk to it as agents and editors do.

`suggester load-test` and the tests that start real servers (serve, load, crash, disk faults)
share these: a `Server` in its own process group (so a test can kill -9 the master and its
workers at once) and an `EditorSession` that signs in and publishes through the editor's forms.
"""

from __future__ import annotations

import contextlib
import html
import http.client
import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

READY_LINE = "ready: models and index loaded"  # logged by web/wsgi.py once per worker
START_SECONDS = 240.0  # two workers loading the models on two busy cores


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A `suggester serve --prod` process; its combined output is kept in `output`."""

    def __init__(self, *, kb_dir: Path, data_dir: Path, cache_dir: Path | None = None,
                 database: Path | None = None, workers: int = 2, port: int | None = None,
                 environ: dict[str, str] | None = None, wrapper: Sequence[str] = (),
                 log_path: Path | None = None) -> None:
        self.workers = workers
        self.port = port or free_port()
        self.log_path = log_path
        self._lines: list[str] = []
        self._process: subprocess.Popen[str] | None = None
        self._drain: threading.Thread | None = None
        # `wrapper` runs the server through another command (the disk-fault tests drop root's
        # permission override with setpriv).
        self.command = [*wrapper, sys.executable, "-m", "suggester.cli",
                        "--data-dir", str(data_dir), "--kb-dir", str(kb_dir), "serve", "--prod",
                        "--port", str(self.port), "--workers", str(workers)]
        # The server sees only what it is given, never the caller's SUGGESTER_* variables.
        self.environ = {k: v for k, v in os.environ.items() if not k.startswith("SUGGESTER_")}
        if cache_dir is not None:
            self.environ["SUGGESTER_CACHE_DIR"] = str(cache_dir)
        if database is not None:
            self.environ["SUGGESTER_DATABASE"] = str(database)
        self.environ.update(environ or {})

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._process is not None, "the server was not started"
        return self._process.pid

    @property
    def output(self) -> str:
        return "".join(self._lines)

    def start(self, timeout: float = START_SECONDS) -> Server:
        """Start and wait until every worker has loaded the models and the index."""
        # Its own session: the master and its workers form one process group to kill.
        # Output goes through a pipe, not a file: a file size limit set on a worker by the
        # disk-fault tests must not hit its log.
        self._process = subprocess.Popen(
            self.command, env=self.environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, encoding="utf-8", errors="replace", start_new_session=True)
        self._drain = threading.Thread(target=self._read_output, daemon=True)
        self._drain.start()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.kill()  # never leave a half-started server behind
            raise
        return self

    def _read_output(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        log = self.log_path.open("a", encoding="utf-8") if self.log_path else None
        try:
            for line in self._process.stdout:
                self._lines.append(line)
                if log:
                    log.write(line)
                    log.flush()
        finally:
            if log:
                log.close()

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"the server exited with {self._process.returncode}:\n"
                                   f"{self.output[-4000:]}")
            if self.output.count(READY_LINE) >= self.workers:
                status, _ = get_json(self.base_url, "/api/health", timeout=10)
                if status == 200:
                    return
            time.sleep(0.3)
        raise RuntimeError(f"the server was not ready within {timeout:.0f} s:\n"
                           f"{self.output[-4000:]}")

    def worker_pids(self) -> list[int]:
        found = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True)
        return [int(pid) for pid in found.stdout.split()]

    def stop(self, timeout: float = 30.0) -> str:
        """Stop gracefully (SIGTERM to the master); kill what is left; return the output."""
        if self._process is None:
            return ""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._finish()
        return self.output

    def kill(self) -> None:
        """kill -9 the master and every worker at once, as a power cut or the OOM killer."""
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # orphaned workers die a moment later
            try:
                os.killpg(self._process.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        self._finish()

    def _finish(self) -> None:
        if self._drain is not None:
            self._drain.join(timeout=10)

    def __enter__(self) -> Server:
        return self.start() if self._process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- HTTP -------------------------------------------------------------------------------------


def request(base_url: str, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None,
            timeout: float = 60.0) -> tuple[int, bytes]:
    """One request on a fresh connection; (status, body). Connection errors are raised."""
    parsed = urllib.parse.urlsplit(base_url)
    connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port,
                                            timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def post_json(base_url: str, path: str, body: dict[str, Any], timeout: float = 60.0, *,
              token: str | None = None) -> tuple[int, Any]:
    """POST a JSON body, with an API token (`Authorization: Bearer`) when given."""
    headers = {"Content-Type": "application/json", **_bearer(token)}
    status, data = request(base_url, "POST", path, json.dumps(body).encode(), headers, timeout)
    return status, _json_or_text(data)


def get_json(base_url: str, path: str, timeout: float = 60.0, *,
             token: str | None = None) -> tuple[int, Any]:
    try:
        status, data = request(base_url, "GET", path, headers=_bearer(token), timeout=timeout)
    except OSError:
        return 0, None
    return status, _json_or_text(data)


def _bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def make_token(database: Path | str, name: str, role: str = "agent") -> str:
    """Make an API token in a server's database (a SQLite file or a PostgreSQL URL); return
    its secret, for `post_json(…, token=…)`."""
    from suggester.records.access import AccessRecords
    from suggester.records.store import Store

    with Store(database) as store:
        return AccessRecords(store).add_token(name, role=role)[1]


def _json_or_text(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", errors="replace")


def form_token(page: str) -> str:
    """The CSRF token of the first form in a page."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


@dataclass(frozen=True, kw_only=True)
class Published:
    """What the editor's page said after pressing 게시."""

    status: int
    ok: bool
    version: int | None
    message: str
    seconds: float


class EditorSession:
    """A browser-like session (cookies kept) of a signed-in editor against one server."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        status, page = self.post_form("/login", {
            "username": username, "password": password,
            "csrf_token": form_token(self.get("/login")[1]), "next": "/"})
        if status != 200 or "로그아웃" not in page:  # the signed-in pages' logout button
            raise RuntimeError(f"could not sign in as {username}: HTTP {status}")

    def get(self, path: str) -> tuple[int, str]:
        return self._open(path, None)

    def post_form(self, path: str, fields: dict[str, str]) -> tuple[int, str]:
        return self._open(path, urllib.parse.urlencode(fields).encode())

    def _open(self, path: str, data: bytes | None) -> tuple[int, str]:
        try:
            with self._opener.open(self.base_url + path, data=data, timeout=120) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:  # 4xx/5xx pages are answers too
            return exc.code, exc.read().decode(errors="replace")

    def source(self, article_id: str) -> tuple[str, str, str]:
        """(source, base hash, CSRF token) of the edit page, as the browser would submit."""
        status, page = self.get(f"/editor/{article_id}/edit?from=file")
        if status != 200:
            raise RuntimeError(f"edit page of {article_id}: HTTP {status}")
        textarea = re.search(r"<textarea[^>]*>(.*?)</textarea>", page, re.S)
        base = re.search(r'name="base" value="([^"]*)"', page)
        assert textarea and base, "the edit page has no source or base field"
        return html.unescape(textarea[1]), base[1], form_token(page)

    def publish(self, article_id: str, edit: Callable[[str], str]) -> Published:
        """Open the article, apply `edit` to its source and press 게시 (publish)."""
        source, base, token = self.source(article_id)
        started = time.perf_counter()
        status, page = self.post_form(f"/editor/{article_id}/save", {
            "csrf_token": token, "base": base, "action": "publish", "source": edit(source)})
        seconds = time.perf_counter() - started
        notices = [html.unescape(n) for n in
                   re.findall(r'<p class="notice notice-(?:ok|error)"[^>]*>(.*?)</p>', page, re.S)]
        done = re.search(r"게시했습니다 \(버전 (\d+)\)", page)
        return Published(status=status, ok=status == 200 and done is not None,
                         version=int(done[1]) if done else None, message=" ".join(notices),
                         seconds=seconds)

