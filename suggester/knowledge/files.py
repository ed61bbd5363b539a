"""Durable file writes: a reader sees the old file or the new one, never a torn one, and a
power cut after the write cannot bring the old one back (the folder is fsynced too).

Used for published articles, the replica's state and the index's generation pointer.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

STAGING_SUFFIX = ".publishing.tmp"  # not *.md, so a leftover is never read as an article


@contextlib.contextmanager
def staged_write(target: Path, text: str) -> Iterator[Callable[[], None]]:
    """Write `text` to a fsynced temp file beside `target`; yield the commit (the replace)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                        suffix=STAGING_SUFFIX)
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        # mkstemp makes the file private; an article is as readable as the one it replaces.
        os.chmod(temporary, target.stat().st_mode & 0o777 if target.exists() else 0o644)

        def commit() -> None:
            os.replace(temporary, target)
            _fsync_dir(target.parent)

        yield commit
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def write_atomically(target: Path, text: str) -> None:
    """Replace `target` with `text` at once: readers see the old or the new file, never a torn
    one, and a crash leaves at most a staging file that `remove_stale_staging` deletes."""
    with staged_write(target, text) as commit:
        commit()


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable: without it a power cut can bring the old file back.
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
