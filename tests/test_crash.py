"""kill -9 of the production server in the middle of a publish, then a restart.

The server runs with the publish test hook, which pauses the publish at one point and says so
in data_dir/test-publish-paused; the test then kills the whole process group (gunicorn master
and workers) and checks what the publish.py docstring promises: the article file is the old or
the new version, never a torn one; the restart cleans up, ends the history with the served
version and repairs the index (`suggester index --verify` exits 0); no history entry is lost;
and publishing works again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from suggester.evaluation.load import FEE_QUESTION, alternate_fee
from suggester.evaluation.serving import EditorSession, Server, make_token, post_json
from suggester.knowledge.articles import read_article
from suggester.publish import PAUSE_MARKER, RECOVERY_AUTHOR, TEST_DELAY_ENV, Publisher
from suggester.records.store import Store

from conftest import PASSWORDS

pytestmark = pytest.mark.slow

ARTICLE = "selling-fees"

# point: (the file holds the new version, a staging file is left, history has the new entry)
POINTS = {
    "staged": (False, True, False),
    "recorded": (False, True, True),
    "replaced": (True, False, True),
    "dense-written": (True, False, True),
}


def verify(settings) -> subprocess.CompletedProcess[str]:
    """`suggester index --verify`, as an operator would run it."""
    return subprocess.run(
        [sys.executable, "-m", "suggester.cli", "--data-dir", str(settings.data_dir),
         "--kb-dir", str(settings.kb_dir), "index", "--verify"],
        env={**os.environ, "SUGGESTER_CACHE_DIR": str(settings.cache_path.parent)},
        capture_output=True, text=True, timeout=300)


def staging_files(settings) -> list:
    return sorted((settings.kb_dir / "policy").glob(f".{ARTICLE}.md.*"))


def wait_for_pause(settings, point: str, publishing: threading.Thread) -> None:
    marker = settings.data_dir / PAUSE_MARKER
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if marker.exists() and marker.read_text(encoding="utf-8") == point:
            return
        assert publishing.is_alive(), "the publish finished without pausing"
        time.sleep(0.05)
    raise AssertionError(f"the publish did not reach {point!r} within 120 s")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def history(settings) -> list[tuple[int, int, str, str, str]]:
    with Store(settings.database_path) as store:
        return [(e.id, e.version, e.author, e.action, e.source)
                for e in store.article_history(ARTICLE)]


# `make test` kills at the two points that need the most repair; `make test-long` at all four.
@pytest.mark.parametrize("point", [
    pytest.param("staged", marks=pytest.mark.long),
    "recorded",
    pytest.param("replaced", marks=pytest.mark.long),
    "dense-written",
])
def test_kill_9_during_a_publish_loses_nothing(served_kb, point):
    settings = served_kb
    path = settings.kb_dir / "policy" / f"{ARTICLE}.md"
    new_file, staging_left, recorded = POINTS[point]

    # One ordinary publish first, so there is history to lose.
    with Store(settings.database_path) as store:
        Publisher(settings, store).publish(alternate_fee(path.read_text(encoding="utf-8")),
                                           author="editor", article_id=ARTICLE)
    before_kill = history(settings)
    old = path.read_bytes()

    server = Server(kb_dir=settings.kb_dir, data_dir=settings.data_dir,
                    cache_dir=settings.cache_path.parent, workers=2,
                    environ={TEST_DELAY_ENV: f"{point}:600"})
    with server:
        editor = EditorSession(server.base_url, "editor", PASSWORDS["editor"])
        outcome: list[object] = []

        def publish() -> None:
            try:
                outcome.append(editor.publish(ARTICLE, alternate_fee))
            except Exception as exc:  # noqa: BLE001 - the server dies under it
                outcome.append(exc)

        publishing = threading.Thread(target=publish, daemon=True)
        publishing.start()
        wait_for_pause(settings, point, publishing)
        processes = [server.pid, *server.worker_pids()]
        assert len(processes) == 3
        server.kill()
        publishing.join(timeout=60)
    assert not any(alive(pid) for pid in processes)
    assert not outcome or not getattr(outcome[0], "ok", False)  # nobody was told it published

    # Right after the kill: a whole file, old or new; history as the docstring says.
    at_kill = history(settings)
    assert at_kill[:len(before_kill)] == before_kill
    leftovers = staging_files(settings)
    assert bool(leftovers) == staging_left
    new = leftovers[0].read_bytes() if staging_left else at_kill[-1][4].encode()
    assert new != old
    assert path.read_bytes() == (new if new_file else old)
    assert len(at_kill) == len(before_kill) + recorded
    if recorded:
        assert at_kill[-1][4].encode() == new and at_kill[-1][2] == "editor"
    if new_file:  # the index is behind the new file until the restart
        index_behind = verify(settings)
        assert index_behind.returncode == 1 and "BM25 index: stale chunk" in index_behind.stdout

    # The restart puts everything in order before it serves.
    served = path.read_bytes()
    restarted = Server(kb_dir=settings.kb_dir, data_dir=settings.data_dir,
                       cache_dir=settings.cache_path.parent, workers=1)
    with restarted:
        startup = next(line for line in restarted.output.splitlines()
                       if line.startswith("start-up check:"))
        assert ("staging file" in startup) == staging_left
        assert ("recorded the served version of selling-fees" in startup) == (
            recorded and not new_file)
        assert ("re-synced the index" in startup) == new_file
        assert path.read_bytes() == served
        assert staging_files(settings) == []
        after = history(settings)
        assert after[:len(at_kill)] == at_kill  # no entry lost
        assert after[-1][4].encode() == served  # the history ends with what is served
        if recorded and not new_file:
            assert after[-1][2] == RECOVERY_AUTHOR and len(after) == len(at_kill) + 1

        status, answer = post_json(restarted.base_url, "/api/suggest",
                                   {"inquiry": FEE_QUESTION, "audience": "seller"},
                                   token=make_token(settings.database_path, "agent-script"))
        assert status == 200
        cited = {c["article_id"]: c["version"] for c in answer["draft"]["citations"]}
        assert cited[ARTICLE] == read_article(path).version

        # Publishing works again: the lock died with the server.
        again = EditorSession(restarted.base_url, "editor", PASSWORDS["editor"]).publish(
            ARTICLE, alternate_fee)
        assert again.ok, again.message
        assert again.version == read_article(path).version > cited[ARTICLE]
    assert "Traceback" not in restarted.output
    result = verify(settings)
    assert result.returncode == 0, result.stdout
