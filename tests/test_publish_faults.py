"""Publishing through the editor of a real server when the disk refuses the write.

No mocks: the faults are the kernel's. Root ignores file modes, so when the tests run as root
the server runs without root's permission override (setpriv drops CAP_DAC_OVERRIDE); then
- a read-only article folder or data dir is a folder (and lock file) without write permission;
- a full disk is stood in for by a file size limit (RLIMIT_FSIZE, set on the running worker):
  the staging write stops part-way with EFBIG, as a full disk stops it with ENOSPC.
Each publish must fail with a message in Korean and English naming the path, leave the article
file, the history and the index as they were, with no staging leftovers, and work again once
the fault is gone.
"""

from __future__ import annotations

import os
import resource
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from suggester.evaluation.load import FEE_QUESTION, alternate_fee
from suggester.evaluation.serving import EditorSession, Server, make_token, post_json
from suggester.search.index import read_generation

from conftest import PASSWORDS, copy_served_kb

pytestmark = pytest.mark.slow

ARTICLE = "selling-fees"
LIMIT_BYTES = 1024  # far below the article's ~4 KB


@pytest.fixture(scope="module")
def served(shipped_settings, tmp_path_factory) -> Iterator[tuple]:
    wrapper: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: root would ignore read-only modes")
        wrapper = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]
    settings = copy_served_kb(shipped_settings, tmp_path_factory.mktemp("faults"))
    server = Server(kb_dir=settings.kb_dir, data_dir=settings.data_dir,
                    cache_dir=settings.cache_path.parent, workers=1, wrapper=wrapper)
    with server:
        yield settings, server
    assert "Traceback" not in server.output


def history(settings) -> list[tuple[int, str]]:
    db = sqlite3.connect(f"file:{settings.database_path}?mode=ro", uri=True)
    try:
        return db.execute("SELECT id, source FROM article_history WHERE article_id = ? "
                          "ORDER BY id", (ARTICLE,)).fetchall()
    finally:
        db.close()


def check_refused_then_works(served, fault: Callable[[], Callable[[], None]], *,
                             english: str, korean: str, names: Path) -> None:
    settings, server = served
    path = settings.kb_dir / "policy" / f"{ARTICLE}.md"
    before = path.read_bytes(), history(settings), read_generation(settings)
    editor = EditorSession(server.base_url, "editor", PASSWORDS["editor"])

    clear = fault()
    try:
        refused = editor.publish(ARTICLE, alternate_fee)
    finally:
        clear()

    assert (refused.status, refused.ok) == (503, False)
    assert english in refused.message and korean in refused.message, refused.message
    assert str(names) in refused.message
    assert (path.read_bytes(), history(settings), read_generation(settings)) == before
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []
    status, _ = post_json(server.base_url, "/api/suggest", {"inquiry": FEE_QUESTION},
                          token=make_token(settings.database_path, f"agent-{time.time_ns()}"))
    assert status == 200  # agents were served throughout

    published = editor.publish(ARTICLE, alternate_fee)
    assert published.ok, published.message
    assert path.read_bytes() != before[0] and len(history(settings)) > len(before[1])
    assert read_generation(settings) > before[2]


def test_a_read_only_article_folder_refuses_the_publish(served):
    folder = served[0].kb_dir / "policy"

    def fault() -> Callable[[], None]:
        folder.chmod(0o555)
        return lambda: folder.chmod(0o755)

    check_refused_then_works(served, fault, english="read-only or not writable",
                             korean=f"{folder} 폴더에 쓸 수 없습니다",
                             names=folder / f"{ARTICLE}.md")


def test_a_read_only_data_dir_refuses_the_publish(served):
    data_dir = served[0].data_dir
    lock = data_dir / "publish.lock"  # the first thing a publish writes

    def fault() -> Callable[[], None]:
        data_dir.chmod(0o555)
        lock.chmod(0o444)

        def clear() -> None:
            lock.chmod(0o644)
            data_dir.chmod(0o755)

        return clear

    check_refused_then_works(served, fault, english="read-only or not writable",
                             korean=f"{data_dir} 폴더에 쓸 수 없습니다", names=lock)


def test_a_write_cut_short_refuses_the_publish(served):
    settings, server = served
    workers = server.worker_pids()
    assert workers

    def fault() -> Callable[[], None]:
        limits = {pid: resource.prlimit(pid, resource.RLIMIT_FSIZE) for pid in workers}
        for pid, (_, hard) in limits.items():
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (LIMIT_BYTES, hard))

        def clear() -> None:
            for pid, limit in limits.items():
                resource.prlimit(pid, resource.RLIMIT_FSIZE, limit)

        return clear

    check_refused_then_works(served, fault, english="file size limit", korean="파일 크기 제한",
                             names=settings.kb_dir / "policy" / f"{ARTICLE}.md")
