"""Removing a version's files safely, and marking a version in use while a job reads it.

A tree is removed by first moving it aside in one rename (``.deleting-<pid>-*`` beside it), so a
listing or a service never sees half a version; what a crash left aside is swept later. A version
a job reads to the end (a retraining reads its parent) carries a mark
``.in-use-<version>@<pid>-*`` meanwhile; the marks of processes that have ended are disregarded
and removed. Neither kind of name can be a version id, so the registry never lists them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from triage.errors import ArtifactError

DELETING = ".deleting-"  # + the deleting process's id: a tree set aside to be removed
IN_USE = ".in-use-"  # + version@pid: a version a running job reads


def remove_tree(path: Path, parent: Path, what: str) -> int:
    """Delete a directory tree after moving it aside in one rename; returns the bytes freed.
    A tree that cannot be moved is kept as it was; one moved aside but not wholly removed is
    left for ``sweep``. Either is an ``ArtifactError`` naming ``what``."""
    size = _size(path)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f"{DELETING}{os.getpid()}-", dir=parent))
    except OSError as exc:
        raise ArtifactError(f"{what} cannot be deleted ({_reason(exc)}): it is kept as it "
                            "was") from None
    try:
        os.replace(path, staging / "v")
    except OSError as exc:
        staging.rmdir()
        raise ArtifactError(f"{what} cannot be deleted ({_reason(exc)}): it is kept as it "
                            "was") from None
    try:
        shutil.rmtree(staging)
    except OSError as exc:
        raise ArtifactError(f"{what} is no longer registered, but some of its files cannot be "
                            f"removed ({_reason(exc)}); `triage models prune` removes them once "
                            "they can be") from None
    return size


def sweep(parent: Path) -> int:
    """Remove the trees set aside under ``parent`` by deletions whose process has ended; returns
    the bytes freed."""
    freed = 0
    for child in sorted(parent.glob(DELETING + "*")) if parent.is_dir() else []:
        pid = child.name[len(DELETING):].partition("-")[0]
        if pid.isdigit() and _running(int(pid)):
            continue  # a deletion under way (or this process's own, which failed: kept)
        size = _size(child)
        shutil.rmtree(child, ignore_errors=True)
        freed += 0 if child.exists() else size
    return freed


@contextlib.contextmanager
def in_use(root: Path, version: str) -> Iterator[None]:
    """While the block runs, ``version`` (a directory of ``root``) is marked in use by this
    process."""
    root.mkdir(parents=True, exist_ok=True)
    mark = root / f"{IN_USE}{version}@{os.getpid()}-{secrets.token_hex(4)}"
    mark.touch()
    try:
        yield
    finally:
        mark.unlink(missing_ok=True)


def users(root: Path, version: str) -> list[int]:
    """The running processes that marked ``version`` in use; stale marks are removed."""
    pids = []
    for mark in root.glob(f"{IN_USE}{version}@*") if root.is_dir() else []:
        pid = mark.name.rpartition("@")[2].partition("-")[0]
        if pid.isdigit() and _running(int(pid)):
            pids.append(int(pid))
        else:
            mark.unlink(missing_ok=True)
    return pids


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def _reason(exc: OSError) -> str:
    reason = (exc.strerror or str(exc)).rstrip(".")
    return reason[:1].lower() + reason[1:]
