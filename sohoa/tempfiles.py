"""Temporary folders that say who made them, so the ones a killed process leaves behind can be removed.

Every folder is ``{tmp}/sohoa-{prefix}-{pid}-{random}``: :func:`tempdir` always removes its own
(normal exit or exception); a ``kill -9`` or an OOM kill cannot, so :func:`remove_stale` (called
when a worker or the API starts) deletes the folders whose process is gone.

Only folders owned by this user and named with a pid are touched; folders of live processes are
kept. The pid check assumes the processes sharing the temp folder share a pid namespace (one
machine, or one container); where they do not, pass ``max_age_s`` above the longest job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("sohoa.tempfiles")

_PREFIX = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_NAME = re.compile(r"sohoa-(?P<prefix>[a-z0-9-]+?)-(?P<pid>\d+)-(?P<random>[a-z0-9_]+)")


@contextlib.contextmanager
def tempdir(prefix: str) -> Iterator[Path]:
    """A new private folder ``{tmp}/sohoa-{prefix}-{pid}-{random}``, removed with its content on exit."""
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"temp folder prefix must be lower-case letters, digits and '-': {prefix!r}")
    path = Path(tempfile.mkdtemp(prefix=f"sohoa-{prefix}-{os.getpid()}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user counts as alive)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True  # cannot tell: keep the folder
    return True


def remove_stale(max_age_s: float = 0, root: str | Path | None = None) -> int:
    """Delete ``sohoa-{prefix}-{pid}-{random}`` folders whose process is dead; return how many.

    Folders younger than ``max_age_s`` seconds (by modification time), of a live pid, of another
    user, symlinks and names without a pid are left alone. ``root`` defaults to the temp folder.
    """
    base = Path(root) if root is not None else Path(tempfile.gettempdir())
    now = time.time()
    removed = 0
    try:
        entries = list(os.scandir(base))
    except OSError as e:
        log.warning("cannot list %s for stale temp folders: %s", base, e)
        return 0
    for entry in entries:
        m = _NAME.fullmatch(entry.name)
        if not m:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            continue
        if now - st.st_mtime < max_age_s or pid_alive(int(m["pid"])):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        if not os.path.lexists(entry.path):
            removed += 1
    if removed:
        log.info("removed %d stale temp folder(s) of dead processes from %s", removed, base)
    else:
        log.debug("no stale temp folders in %s", base)
    return removed
