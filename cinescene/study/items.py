"""A study's held-out items: what every arm and the base model are evaluated on, written as an eval set.

By default they are the items the trainer holds out of the training data (its ``validation/`` folder, or the
split it makes by content hash): the validation scores over the training steps and the final evaluation then
see the same footage, and no arm trains on it. Otherwise a folder of captioned clips and stills, or an eval set
file. A clip becomes an item with its first frame as the still, its caption as the prompt and the clip itself as
the reference; a still has no reference. Every item is sampled under every evaluation seed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from .. import atomic, media
from ..errors import InputError
from ..evaluate import EvalItem, read_set
from ..hashing import sha256_file
from ..training.config import TrainConfig
from ..training.dataset import DataItem, Dataset, scan
from .config import StudyConfig

FOLDER = "held_out"


@dataclass(frozen=True)
class HeldOut:
    """The held-out items (one per clip or still), and the evaluation's list: every item under every seed.

    ``evaluation[i]`` is item ``i // len(seeds)`` under seed ``seeds[i % len(seeds)]``. A clip's still is its
    first frame, written by ``write`` (``first_frames``: item index -> clip).
    """

    items: list[EvalItem]
    seeds: tuple[int, ...]
    source: str
    files: list[dict[str, str]]  # each item's files, their sha256 and the prompt: what the evaluation sees
    first_frames: dict[int, Path] = field(default_factory=dict)

    @property
    def evaluation(self) -> list[EvalItem]:
        return [EvalItem(i.image, i.prompt, i.reference, seed) for i in self.items for seed in self.seeds]

    def item_of(self, position: int) -> int:
        """The item of the evaluation's ``position``-th video."""
        return position // len(self.seeds)

    def write(self, out: Path) -> None:
        """The clips' first frames as stills, and ``out/held_out/set.jsonl``: the items as ``python -m cinescene
        eval --set`` reads them."""
        folder = out / FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        for index, clip in self.first_frames.items():
            with atomic.atomic_path(self.items[index].image) as tmp:
                Image.fromarray(media.read_video(clip, max_frames=1).frames[0]).save(tmp, format="PNG")
        rows: list[dict[str, Any]] = [{"image": str(i.image), "prompt": i.prompt,
                                       **({"reference": str(i.reference)} if i.reference else {})} for i in self.items]
        atomic.write_text(folder / "set.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def held_out(config: StudyConfig, train: TrainConfig, dataset: Dataset, out: Path) -> HeldOut:
    """The study's held-out items (nothing is written until ``HeldOut.write``)."""
    source = config.held_out
    if not source:
        if not dataset.validation:
            raise InputError(f"{train.data} has no held-out items (no validation/ folder, and val_fraction is 0 or "
                             "it holds under 4 items): give the study a held_out folder or set file")
        return _from_data(dataset.validation, config, out, f"held out of {train.data}")
    if Path(source).is_dir():
        found = scan(source, stage=train.stage, window=train.window, fps=train.fps, val_fraction=0,
                     skip_bad=train.skip_bad)
        return _from_data(found.train, config, out, str(source))
    items = read_set(source)[:config.max_items or None]
    files = [{"image": i.image.name, "sha256": sha256_file(i.image), "prompt": i.prompt,
              **({"reference": i.reference.name, "reference_sha256": sha256_file(i.reference)} if i.reference else {})}
             for i in items]
    return HeldOut(items, tuple(config.eval_seeds), str(source), files)


def _from_data(data: list[DataItem], config: StudyConfig, out: Path, source: str) -> HeldOut:
    data = data[:config.max_items or None]
    items, files, first_frames = [], [], {}
    for index, item in enumerate(data):
        files.append({item.kind: item.name, "sha256": item.sha256, "prompt": item.caption})
        if item.kind == "still":
            items.append(EvalItem(item.path.resolve(), item.caption))
            continue
        still = (out / FOLDER / f"{index:04d}.png").resolve()
        first_frames[index] = item.path
        items.append(EvalItem(still, item.caption, item.path.resolve()))
    return HeldOut(items, tuple(config.eval_seeds), source, files, first_frames)
