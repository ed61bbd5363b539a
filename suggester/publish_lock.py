"""The KB's publish lock and the errors of a refused write, below both publishing and replication.

`publish.Publisher` and `replicate.Replica` both write articles into the KB folder; each holds
this lock while it does, so a local publish and a change applied from another host never
interleave. Neither module imports the other for it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from suggester.errors import SuggesterError
from suggester.settings import Settings

LOCK_FILE = "publish.lock"


class PublishError(SuggesterError):
    """An article could not be saved; nothing was changed on disk.

    `english` and `korean` hold the message in each language; `str()` shows both.
    """

    def __init__(self, english: str, korean: str) -> None:
        self.english = english
        self.korean = korean
        super().__init__(f"{english} ({korean})")


class WriteFailed(PublishError):
    """The article file could not be written (disk full, read-only folder, permissions)."""


class PublishBusy(PublishError):
    """Another publish held the lock for too long."""


@contextlib.contextmanager
def publish_lock(settings: Settings, *, timeout: float = 30.0) -> Iterator[None]:
    """Hold the KB's publish lock (an flock, so it also works across processes)."""
    path = settings.data_dir / LOCK_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise write_error(exc, path) from exc
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise PublishBusy(
                        f"another publish has held {path} for over {timeout:.0f} s; try again",
                        "다른 게시 작업이 진행 중입니다. 잠시 후 다시 시도하세요.") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(descriptor)  # closing the descriptor releases the lock


def write_error(exc: OSError, path: Path) -> WriteFailed:
    """A disk error as a message that says what to do."""
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        return WriteFailed(f"cannot write {path}: the disk is full; free some space and retry",
                           "디스크 공간이 부족해 저장하지 못했습니다. 공간을 확보한 뒤 다시 "
                           "시도하세요. 기존 문서는 그대로입니다.")
    if exc.errno == errno.EFBIG:
        return WriteFailed(f"cannot write {path}: a file size limit was reached (ulimit -f or "
                           "the file system's); raise the limit or free space and retry",
                           "파일 크기 제한에 걸려 저장하지 못했습니다(디스크 할당량 또는 "
                           "ulimit -f). 관리자에게 확인을 요청하세요. 기존 문서는 그대로입니다.")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return WriteFailed(f"cannot write {path}: the folder is read-only or not writable by "
                           "this process; fix its permissions",
                           f"{path.parent} 폴더에 쓸 수 없습니다(읽기 전용이거나 권한이 없음). "
                           "관리자에게 권한 확인을 요청하세요. 기존 문서는 그대로입니다.")
    return WriteFailed(f"cannot write {path}: {exc.strerror or exc}",
                       f"파일을 저장하지 못했습니다({exc.strerror or exc}). 기존 문서는 "
                       "그대로입니다.")
