"""Where generated files go: a fresh, unguessable folder per app request, checked folders for the CLI, cleanup."""

from __future__ import annotations

import datetime as _dt
import os
import re
import secrets
import shutil
import threading
import time
from pathlib import Path

from .errors import InputError

DEFAULT_OUTPUTS = Path(os.environ.get("CINESCENE_OUTPUTS", "outputs"))
_REQUEST_DIR = re.compile(r"^[a-z]+-\d{8}-\d{6}-[0-9a-f]{8}$")
# Viewers' judgements of a compare (review_ab). A request folder holding them is trimmed to its JSON records
# instead of removed: they are a few hundred bytes, and unlike a video they cannot be made again.
REVIEWS_FILE = "reviews.jsonl"
KEPT_SUFFIXES = (".json", ".jsonl")


def new_request_dir(root: str | os.PathLike[str] = DEFAULT_OUTPUTS, kind: str = "sample") -> Path:
    """Create ``root/<kind>-<UTC time>-<random>``; two requests never share a folder."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")
    folder = Path(root) / f"{kind}-{stamp}-{secrets.token_hex(4)}"
    folder.mkdir(parents=True, exist_ok=False)
    return folder


def check_out_folder(out_dir: str | os.PathLike[str]) -> Path:
    """An output folder the user named: it may exist (as a folder), and its parent must."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"the output path is a file, not a folder: {out_dir}")
    if not out_dir.parent.is_dir():
        raise InputError(f"the output folder's parent does not exist: {out_dir.parent}")
    return out_dir


def cleanup(root: str | os.PathLike[str], max_age_hours: float, max_bytes: int, now: float | None = None) -> list[Path]:
    """Remove request folders older than ``max_age_hours``, then the oldest until ``root`` fits ``max_bytes``.

    Only folders this module creates (``kind-YYYYmmdd-HHMMSS-hex``) are touched. A folder with reviews
    (``REVIEWS_FILE``) loses every file but its JSON records and stays; it is not in the returned list.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    ours = (p for p in root.iterdir() if p.is_dir() and _REQUEST_DIR.match(p.name))
    folders = sorted(ours, key=lambda p: p.stat().st_mtime)
    sizes = {p: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) for p in folders}
    removed = []
    total = sum(sizes.values())
    for folder in folders:
        too_old = now - folder.stat().st_mtime > max_age_hours * 3600
        if too_old or total > max_bytes:
            if (folder / REVIEWS_FILE).is_file():
                total -= trim(folder)
                continue
            shutil.rmtree(folder, ignore_errors=True)
            total -= sizes[folder]
            removed.append(folder)
    return removed


def trim(folder: Path) -> int:
    """Delete every file of ``folder`` but its JSON records (and the folders left empty); returns the bytes freed."""
    freed = 0
    for path in sorted(folder.rglob("*"), reverse=True):  # files before the folders holding them
        if path.is_file() and path.suffix not in KEPT_SUFFIXES:
            freed += path.stat().st_size
            path.unlink(missing_ok=True)
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return freed


class Janitor:
    """Runs ``cleanup`` every ``interval`` seconds on a daemon thread."""

    def __init__(self, root: str | os.PathLike[str], max_age_hours: float, max_bytes: int,
                 interval: float = 600.0) -> None:
        self.args = (Path(root), max_age_hours, max_bytes)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cinescene-janitor", daemon=True)

    def start(self) -> Janitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            cleanup(*self.args)
            self._stop.wait(self.interval)
