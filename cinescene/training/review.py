"""Checkpoint review: a run's saved checkpoints rendered on a crew's shot list, and one promoted into the library.

A LoRA run keeps its last checkpoints (``--keep-checkpoints``) under ``<run>/[<stage>/]checkpoints/step_N``,
each with the adapter's weights at that step. The shot list is an eval set (``evaluate.read_set``: image,
prompt, seed). Review turns each checkpoint into an adapter in a scratch library (the same conversion the
trainer publishes with), renders every shot with it, the motion stage's frozen style adapter loaded as in
training, and writes a grid: rows are the base model and the checkpoints, columns the shots. Promotion
puts one checkpoint into the real library, its sidecar naming the run and the step.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .. import architecture, atomic, lora_formats, media, metrics, outputs, progress, sampler
from ..adapters import AdapterInfo, AdapterLibrary
from ..errors import CinesceneError, InputError
from ..evaluate import EvalItem
from ..loading import LoadedModel
from ..record import build_record
from ..settings import AdapterChoice, SampleSettings
from . import checkpoints
from .config import TrainConfig
from .log import read_log


@dataclass(frozen=True)
class Checkpoint:
    stage: str
    step: int
    path: Path
    frozen_style: str | None  # the style adapter a motion checkpoint was trained with

    @property
    def label(self) -> str:
        return f"{self.stage} step {self.step}"


def run_config(run_dir: str | os.PathLike[str]) -> TrainConfig:
    """The settings a run started with, from the first event of its log."""
    run_dir = Path(run_dir)
    start = next((e for e in read_log(run_dir / "log.jsonl") if e.get("type") == "start"), None)
    if start is None:
        raise InputError(f"{run_dir} is not a training run: it has no log.jsonl with a start event")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: tuple(v) if k == "adam_betas" else v for k, v in start["config"].items() if k in known}
    return TrainConfig(**values)


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[Checkpoint]:
    """Every complete checkpoint of a LoRA run, by stage then step."""
    run_dir = Path(run_dir)
    config = run_config(run_dir)
    if config.method != "lora":
        raise InputError(f"{run_dir.name} is a full fine-tuning run: review and promotion are for LoRA runs")
    try:
        two_experts = architecture.family(config.model).two_experts
    except CinesceneError:
        two_experts = False  # a model not readable here: its checkpoints can still be listed
    if two_experts:
        # A checkpoint holds one expert's LoRA; a shot needs both experts' (the library's pairs, issue 17 item 2).
        raise InputError(f"{run_dir.name} trained {config.model}'s two experts apart: review and promotion are for "
                         "one-transformer runs so far")
    stages = ["style", "motion"] if config.stage == "both" else [config.stage]
    found = []
    for stage in stages:
        root = (run_dir / stage if config.stage == "both" else run_dir) / "checkpoints"
        for path in sorted(root.glob("step_*")):
            state_file = path / checkpoints.STATE_FILE
            if path.name.endswith(".tmp") or not state_file.is_file() or not (path / "adapter.safetensors").is_file():
                continue
            state = json.loads(state_file.read_text())
            found.append(Checkpoint(stage, int(state["step"]), path, state.get("frozen_style")))
    return found


def find_checkpoint(run_dir: str | os.PathLike[str], step: int, stage: str | None = None) -> Checkpoint:
    matches = [c for c in list_checkpoints(run_dir) if c.step == step and stage in (None, c.stage)]
    if not matches:
        have = ", ".join(c.label for c in list_checkpoints(run_dir)) or "none"
        raise InputError(f"{Path(run_dir).name} has no checkpoint at step {step}"
                         + (f" of the {stage} stage" if stage else "") + f" (it has: {have})")
    if len(matches) > 1:
        raise InputError(f"{Path(run_dir).name} has a step {step} checkpoint in both stages: name the stage")
    return matches[0]


def promote(run_dir: str | os.PathLike[str], checkpoint: Checkpoint, library: AdapterLibrary, model: LoadedModel,
            name: str | None = None, overwrite: bool = False) -> AdapterInfo:
    """Put ``checkpoint``'s adapter into ``library`` (converted as the trainer publishes), sidecar naming its origin."""
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    config = run_config(run_dir)
    canonical = lora_formats.from_peft(load_file(str(checkpoint.path / "adapter.safetensors")), config.rank,
                                       config.alpha)
    extra = {"run": run_dir.name, "stage": checkpoint.stage, "step": checkpoint.step,
             "frozen_style": checkpoint.frozen_style}
    return library.add(canonical, checkpoint.stage, name=name or f"{run_dir.name}-{checkpoint.stage}-{checkpoint.step}",
                       base_model=config.model, transformer=model.pipe.transformer, overwrite=overwrite,
                       alpha=config.alpha, extra=extra,
                       description=f"checkpoint step {checkpoint.step} of run {run_dir.name} ({checkpoint.stage})")


def choices_for(checkpoint: Checkpoint, name: str) -> tuple[AdapterChoice, ...]:
    frozen = (AdapterChoice("style", checkpoint.frozen_style),) if checkpoint.frozen_style else ()
    return (*frozen, AdapterChoice(checkpoint.stage, name))


def review(model: LoadedModel, run_dir: str | os.PathLike[str], shots: list[EvalItem], template: SampleSettings,
           out_dir: str | os.PathLike[str], library: AdapterLibrary, on_event: progress.OnEvent | None = None
           ) -> dict[str, Any]:
    """Render every shot at every checkpoint (and the base model); write ``DIR`` and return its record.

    ``DIR/grid.mp4`` and ``grid.png`` (rows: base, then checkpoints; columns: shots),
    ``DIR/videos/<row>/<shot>.mp4``, ``DIR/review.json`` (per cell: look distance to the base cell,
    camera motion). Checkpoint adapters go into a scratch library inside ``DIR``, which ``library``
    (for a motion run's frozen style) backs; nothing is added to ``library`` itself.
    """
    if not shots:
        raise InputError("the shot list is empty: give at least one still and prompt")
    found = list_checkpoints(run_dir)
    if not found:
        raise InputError(f"{Path(run_dir).name} has no saved checkpoint yet (they come every --checkpoint-every "
                         "steps)")
    images = [media.load_image(s.image) for s in shots]
    out_dir = outputs.check_out_folder(out_dir)
    scratch = AdapterLibrary(out_dir / "adapters")
    for kind in ("style", "motion"):  # the frozen style adapters a motion run names
        for info in library.list(kind):
            if any(c.frozen_style == info.name for c in found):
                scratch.import_file(info.path, kind, name=info.name, base_model=info.base_model,
                                    transformer=model.pipe.transformer)
    rows: list[tuple[str, tuple[AdapterChoice, ...]]] = [("base", ())]
    for checkpoint in found:
        info = promote(run_dir, checkpoint, scratch, model, name=f"{checkpoint.stage}-{checkpoint.step}")
        rows.append((checkpoint.label, choices_for(checkpoint, info.name)))
    total, done = len(rows) * len(shots), 0
    videos: list[list[np.ndarray]] = []
    cells: list[dict[str, Any]] = []
    for r, (label, adapters) in enumerate(rows):
        videos.append([])
        for s, (shot, image) in enumerate(zip(shots, images)):
            seed = template.seed if shot.seed is None else shot.seed
            settings = dataclasses.replace(template, prompt=shot.prompt, seed=seed, adapters=adapters)
            frames = sampler.sample(model, image, settings, library=scratch).frames
            (out_dir / "videos" / f"row{r}").mkdir(parents=True, exist_ok=True)
            path = media.write_video(frames, out_dir / "videos" / f"row{r}" / f"shot{s}.mp4")
            videos[-1].append(frames)
            motion = metrics.camera_motion(frames).values
            cells.append({"row": label, "shot": s, "video": str(path.relative_to(out_dir)),
                          "adapters": [dataclasses.asdict(a) for a in adapters],
                          "look_to_base": round(metrics.look_to(frames, videos[0][s]).values["distance"], 3),
                          **{k: round(float(motion[k]), 4) for k in ("dx", "dy", "zoom")}})
            done += 1
            progress.report(on_event, "rendering", done, total)
    grid = media.tile(videos, [[f"{label} / shot {s}" for s in range(len(shots))] for label, _ in rows])
    media.write_video(grid, out_dir / "grid.mp4")
    with atomic.atomic_path(out_dir / "grid.png") as tmp:
        Image.fromarray(grid[len(grid) // 2]).save(tmp, format="PNG")
    record = build_record(kind="checkpoint_review", model=model.describe(), run=Path(run_dir).name,
                          settings=template.to_dict(), checkpoints=[c.label for c in found],
                          shots=[{"image": str(s.image), "prompt": s.prompt, "seed": s.seed} for s in shots],
                          cells=cells)
    atomic.write_json(out_dir / "review.json", record)
    shutil.rmtree(out_dir / "adapters", ignore_errors=True)  # scratch: the checkpoints themselves stay in the run
    return record
