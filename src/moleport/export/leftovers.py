"""Leftovers of a killed export: temporary folders named ``<prefix><pid>-<random>`` whose process is gone.

Every temporary folder an export makes carries the exporting process id in its name, so the next run can
tell a leftover (that process no longer exists) from a folder another export is writing right now. Folders
from before this naming (no pid) are removed once nothing in them changed for :data:`LEGACY_AGE_S` seconds.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import time
from pathlib import Path

log = logging.getLogger(__name__)
LEGACY_AGE_S = 2 * 3600.0


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _newest_mtime(folder: Path) -> float:
    newest = folder.lstat().st_mtime
    for dirpath, _, files in os.walk(folder):
        for f in files:
            try:
                newest = max(newest, os.lstat(os.path.join(dirpath, f)).st_mtime)
            except OSError:
                pass
    return newest


def is_stale(path: Path, prefix: str, now: float | None = None) -> bool:
    """True when ``path`` (named ``prefix...``) was left by a process that no longer runs."""
    rest = path.name[len(prefix):]
    m = re.match(r"(\d+)-", rest)
    if m:
        pid = int(m.group(1))
        return pid != os.getpid() and not pid_alive(pid)
    return (now or time.time()) - _newest_mtime(path) > LEGACY_AGE_S


def remove_stale(parent: str | Path, prefix: str) -> list[Path]:
    """Remove every stale ``parent/prefix*`` folder (see :func:`is_stale`); returns what was removed."""
    parent = Path(parent)
    removed: list[Path] = []
    try:
        candidates = [p for p in parent.iterdir() if p.name.startswith(prefix) and p.is_dir() and not p.is_symlink()]
    except OSError:
        return removed
    for p in sorted(candidates):
        try:
            if is_stale(p, prefix):
                shutil.rmtree(p)
                removed.append(p)
                log.warning("removed %s, left behind by an export that did not finish", p)
        except OSError as exc:
            log.warning("cannot remove leftover %s: %s", p, exc)
    return removed
