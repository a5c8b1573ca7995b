"""Crash-safe file writes: every file cinescene produces goes through here.

A reader (or a crash) sees either the old file or the complete new one, never a
half-written file: we write to a temporary name in the destination folder and
``os.replace`` it into place, which is atomic on POSIX and Windows when both
names are on the same filesystem.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; move it onto ``dest`` on success.

    The temporary name keeps ``dest``'s suffix because some writers (ffmpeg,
    safetensors helpers) pick the container format from the extension. On any
    exception the temporary file is removed and ``dest`` is left untouched.
    """
    dest = Path(dest)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=f".tmp{dest.suffix}", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_bytes(dest: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def write_text(dest: str | os.PathLike[str], text: str) -> None:
    write_bytes(dest, text.encode("utf-8"))


def write_json(dest: str | os.PathLike[str], obj: Any) -> None:
    write_text(dest, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def replace_dir(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Move the complete folder ``src`` onto ``dest`` (a checkpoint, a model folder).

    Two folders cannot be swapped in one step, so an existing ``dest`` is first
    renamed aside and deleted only after ``src`` is in place: a crash in between
    leaves the old folder under ``.NAME.old``, never a mix of the two.
    """
    src, dest = Path(src), Path(dest)
    for path in src.rglob("*"):
        if path.is_file():
            _fsync_file(path)
    aside = dest.with_name(f".{dest.name}.old")
    if dest.exists():
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(dest, aside)
    os.replace(src, dest)
    _fsync_dir(dest.parent)
    shutil.rmtree(aside, ignore_errors=True)


def _fsync_file(path: Path) -> None:
    # Without the fsync a power cut after the rename can leave an empty file
    # under the final name on ext4/xfs: rename is ordered, data is not.
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
