"""Training data: scan a folder of captioned clips and stills, check every file before any work.

Layout::

    data/
      clip_a.mp4   clip_a.txt        # caption beside the file, or
      still_b.png  still_b.txt
      metadata.csv | metadata.jsonl  # file + caption columns (a .txt beside a file wins)
      validation/                    # optional: same layout, held out for validation

Without ``validation/`` a fraction of the items is held out, chosen by content
hash so the split does not change between runs.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import media
from ..errors import InputError
from ..hashing import sha256_file

CLIP_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv")
STILL_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
MAX_FILE_BYTES = 4 * 2**30
MAX_SIDE = 8192
MIN_SIDE = 64
MAX_SECONDS = 30 * 60
MAX_CAPTION = 2000
MAX_ITEMS = 100_000
FILE_COLUMNS = ("file", "file_name", "filename", "path", "video", "image")
CAPTION_COLUMNS = ("caption", "text", "prompt")


class DatasetError(InputError):
    """Every bad file of a dataset, each with its reason."""

    def __init__(self, problems: list[tuple[str, str]], root: Path) -> None:
        self.problems = problems
        listed = "; ".join(f"{name}: {reason}" for name, reason in problems)
        super().__init__(f"{len(problems)} bad file(s) in {root}: {listed}. Fix them, or pass --skip-bad to "
                         "train on the rest")


@dataclass(frozen=True)
class DataItem:
    path: Path
    kind: str  # "clip" or "still"
    caption: str
    sha256: str
    width: int
    height: int
    frames: int  # decodable frames at the file's own rate (1 for a still)
    fps: float  # 0 for a still
    seconds: float

    @property
    def name(self) -> str:
        return self.path.name

    def frames_at(self, fps: int) -> int:
        """Frames after resampling to ``fps`` (what the window cutter gets)."""
        if self.kind == "still":
            return 1
        # ffmpeg's fps filter keeps the clip's duration, frames / native rate, at the new rate.
        return max(1, int(math.floor(self.frames * fps / self.fps + 1e-6)))


@dataclass
class Dataset:
    root: Path
    train: list[DataItem]
    validation: list[DataItem]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        def count(items: list[DataItem], kind: str) -> int:
            return sum(1 for i in items if i.kind == kind)

        digest = hashlib.sha256("".join(sorted(i.sha256 for i in self.train + self.validation)).encode())
        return {"root": str(self.root), "train_clips": count(self.train, "clip"),
                "train_stills": count(self.train, "still"), "validation_items": len(self.validation),
                "seconds_of_video": round(sum(i.seconds for i in self.train), 2),
                "skipped": [{"file": n, "reason": r} for n, r in self.skipped], "content_sha256": digest.hexdigest()}


def _metadata_captions(folder: Path) -> tuple[dict[str, str], list[tuple[str, str]]]:
    captions: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    for meta in (folder / "metadata.csv", folder / "metadata.jsonl"):
        if not meta.is_file():
            continue
        try:
            text = meta.read_text(encoding="utf-8")
            if meta.suffix == ".csv":
                rows = list(csv.DictReader(io.StringIO(text)))
            else:
                rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        except (UnicodeDecodeError, ValueError, csv.Error) as err:
            problems.append((meta.name, f"unreadable ({err})"))
            continue
        for number, row in enumerate(rows, 2 if meta.suffix == ".csv" else 1):
            file_key = next((k for k in FILE_COLUMNS if isinstance(row, dict) and row.get(k)), None)
            caption_key = next((k for k in CAPTION_COLUMNS if isinstance(row, dict) and k in row), None)
            if file_key is None or caption_key is None:
                problems.append((meta.name, f"line {number} needs a file and a caption column"))
                continue
            name = str(row[file_key])
            if Path(name).name != name:
                problems.append((meta.name, f"line {number}: {name!r} must be a file name in the same folder"))
                continue
            if not (folder / name).is_file():
                problems.append((meta.name, f"line {number} names a missing file {name!r}"))
                continue
            captions[name] = str(row[caption_key] or "").strip()
    return captions, problems


def _check_file(path: Path, caption: str | None, window: int, fps: int, needs_window: bool) -> DataItem:
    """One file's DataItem, or InputError with the reason."""
    size = path.stat().st_size
    if size == 0:
        raise InputError("empty file")
    if size > MAX_FILE_BYTES:
        raise InputError(f"absurd size: {size / 2**30:.1f} GiB (limit {MAX_FILE_BYTES // 2**30} GiB)")
    if caption is None or not caption.strip():
        raise InputError("no caption (add a .txt beside it or a metadata.csv/jsonl row)")
    if len(caption) > MAX_CAPTION:
        raise InputError(f"caption of {len(caption)} characters (limit {MAX_CAPTION})")
    if path.suffix.lower() in STILL_SUFFIXES:
        image = media.load_image(path)
        width, height = image.size
        frames, rate, seconds = 1, 0.0, 0.0
    else:
        width, height, rate, seconds, frames = _probe_clip(path)
    if max(width, height) > MAX_SIDE or min(width, height) < MIN_SIDE:
        raise InputError(f"absurd size: {width}x{height} (sides must be {MIN_SIDE} to {MAX_SIDE})")
    item = DataItem(path, "still" if rate == 0 else "clip", caption.strip(), sha256_file(path), width, height,
                    frames, rate, seconds)
    if item.kind == "clip" and needs_window and item.frames_at(fps) < window:
        raise InputError(f"clip shorter than the window: {item.frames_at(fps)} frames at {fps} fps, "
                         f"the motion window needs {window}")
    return item


def _probe_clip(path: Path) -> tuple[int, int, float, float, int]:
    try:
        header = media.probe_video(path)
    except InputError as err:
        raise InputError("not a readable video (ffmpeg could not read its header)") from err
    rate, duration = header.fps, header.duration
    if rate <= 0 or duration <= 0:
        raise InputError("no frame rate or duration in the header")
    if duration > MAX_SECONDS:
        raise InputError(f"absurd length: {duration / 60:.0f} minutes (limit {MAX_SECONDS // 60}); cut it first")
    try:
        # Decodes every frame (to nowhere): the only way to know the file is whole.
        counted = media.probe_video(path, count=True)
    except InputError as err:
        raise InputError("damaged: ffmpeg could not decode it") from err
    frames = int(counted.decoded_frames or 0)
    if frames < 0.9 * duration * rate - 1:
        raise InputError(f"truncated: its header promises about {round(duration * rate)} frames, "
                         f"only {frames} decode")
    return header.width, header.height, rate, float(counted.decoded_seconds or 0) or frames / rate, frames


def _scan_folder(folder: Path, window: int, fps: int, needs_window: bool) -> tuple[list[DataItem],
                                                                                   list[tuple[str, str]]]:
    captions, problems = _metadata_captions(folder)
    items = []
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in CLIP_SUFFIXES + STILL_SUFFIXES)
    if len(files) > MAX_ITEMS:
        raise InputError(f"{folder} holds {len(files)} media files; the limit is {MAX_ITEMS}")
    for path in files:
        caption = captions.get(path.name)
        side = path.with_suffix(".txt")
        if side.is_file():
            try:
                caption = side.read_text(encoding="utf-8").strip()
            except UnicodeDecodeError:
                problems.append((path.name, f"caption file {side.name} is not UTF-8 text"))
                continue
        try:
            items.append(_check_file(path, caption, window, fps, needs_window))
        except InputError as err:
            problems.append((path.relative_to(folder.parent).as_posix() if folder.name == "validation"
                             else path.name, str(err)))
    return items, problems


def scan(root: str | os.PathLike[str], *, stage: str, window: int = 33, fps: int = 16, val_fraction: float = 0.1,
         skip_bad: bool = False, min_held_out: int = 1) -> Dataset:
    """Check every file; raise DatasetError listing all problems unless ``skip_bad``.

    Without a validation/ folder, ``val_fraction`` of the items are held out, and at least ``min_held_out``
    (what validation samples) where that leaves three quarters of them for training.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset folder not found: {root}")
    needs_window = stage in ("motion", "both")
    train, problems = _scan_folder(root, window, fps, needs_window)
    validation: list[DataItem] = []
    if (root / "validation").is_dir():
        validation, val_problems = _scan_folder(root / "validation", window, fps, needs_window)
        problems += val_problems
    if problems and not skip_bad:
        raise DatasetError(problems, root)
    if needs_window and not any(i.kind == "clip" for i in train):
        raise InputError(f"the motion stage needs clips, and {root} has no usable one")
    if not train:
        raise InputError(f"no usable clips or stills in {root}")
    if not validation and val_fraction > 0 and len(train) >= 4:
        validation, train = _hold_out(train, val_fraction, prefer_clips=needs_window, at_least=min_held_out)
    return Dataset(root, train, validation, skipped=problems)


def _hold_out(items: list[DataItem], fraction: float, prefer_clips: bool,
              at_least: int = 1) -> tuple[list[DataItem], list[DataItem]]:
    count = max(1, round(len(items) * fraction), min(at_least, len(items) // 4))
    # By content hash: the same files give the same split, whatever their names or order.
    ranked = sorted(items, key=lambda i: (prefer_clips and i.kind != "clip", i.sha256))
    held = ranked[:count]
    return held, [i for i in items if i not in held]
