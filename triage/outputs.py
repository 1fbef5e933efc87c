"""Where the commands write: an output path checked before the work starts, and a failed write
told in one sentence instead of a traceback.

The checks create nothing, so a command refused for another reason leaves no empty file or folder
behind; missing parent folders are created when the file is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from triage.errors import OutputFileError


def check_output_file(path: Path | str) -> None:
    """Refuse an output file that cannot be written: a directory, or under a file or a read-only
    folder. Nothing is created."""
    path = Path(path)
    if path.is_dir():
        raise OutputFileError(f"{path} is a directory: give a file name, "
                          f"e.g. {path / ('output' + (path.suffix or '.csv'))}")
    _check_parent(path)


def check_output_dir(path: Path | str) -> None:
    """Refuse an output directory that cannot be made: an existing file, or under a file or a
    read-only folder. Whether it is empty is the artifact writer's concern."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputFileError(f"{path} is a file: give a directory for the new version")
    _check_parent(path)


def _check_parent(path: Path) -> None:
    folder = _nearest_existing(path.absolute().parent)
    if not folder.is_dir():
        raise OutputFileError(f"cannot write {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputFileError(f"cannot write {path}: the folder {folder} is not writable")


def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


@contextmanager
def writing(path: Path | str) -> Iterator[None]:
    """Turn an ``OSError`` raised while writing ``path`` into an ``OutputFileError`` naming it."""
    try:
        yield
        return
    except OSError as exc:
        failure = write_failure(path, exc)
    check_output_file(path)  # the clearer sentence, when the path itself is the reason
    raise OutputFileError(failure)


def write_failure(path: Path | str, exc: OSError) -> str:
    """One sentence for a failed write: which file, and the system's reason."""
    reason = (exc.strerror or str(exc)).rstrip(".")
    where = exc.filename if exc.filename and str(exc.filename) != str(path) else None
    detail = f"{reason[:1].lower()}{reason[1:]}" + (f": {where}" if where else "")
    return f"cannot write {path} ({detail}); choose another output path"
