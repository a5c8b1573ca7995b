"""Base against tuned: the same image, prompt and seed, one loaded pipeline, then every metric."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import atomic, media, metrics, outputs, progress, sampler
from .adapters import AdapterLibrary
from .errors import InputError
from .loading import LoadedModel
from .record import build_record
from .settings import SampleSettings

TASKS = ("base", "tuned", "scoring")  # the progress tasks of one comparison, in order


@dataclass
class CompareResult:
    base: sampler.SampleResult
    tuned: sampler.SampleResult
    metrics: dict[str, Any]
    paths: dict[str, Path]


def check_compare_inputs(settings: SampleSettings, out_dir: str | os.PathLike[str]) -> Path:
    if not settings.adapters:
        raise InputError("nothing to compare: choose a style or motion adapter for the tuned side")
    if settings.frames < 2:
        raise InputError("compare needs at least 5 frames: temporal metrics look at consecutive frames")
    return outputs.check_out_folder(out_dir)


def compare(
    model: LoadedModel,
    image: Image.Image,
    settings: SampleSettings,
    out_dir: str | os.PathLike[str],
    library: AdapterLibrary,
    networks: metrics.MetricNetworks,
    on_event: progress.OnEvent | None = None,
) -> CompareResult:
    """Generate base (every slot at 0) and tuned (the chosen adapters) from one seed, score, write DIR/.

    Progress: the tasks in ``TASKS``, base and tuned per denoising step.
    """
    out_dir = check_compare_inputs(settings, out_dir)
    sampler.validate_settings(settings, library)
    out_dir.mkdir(exist_ok=True)
    base = sampler.sample_to_file(model, image, dataclasses.replace(settings, adapters=()), out_dir / "base.mp4",
                                  on_event=progress.as_task(on_event, "base"), library=library)
    tuned = sampler.sample_to_file(model, image, settings, out_dir / "tuned.mp4",
                                   on_event=progress.as_task(on_event, "tuned"), library=library)
    progress.report(on_event, "scoring", 0, 1)
    scores = metrics.score_pair(networks, base.frames, tuned.frames, prompt=settings.prompt, image=image)
    progress.report(on_event, "scoring", 1, 1)
    side = media.write_video(np.concatenate([base.frames, tuned.frames], axis=2), out_dir / "side_by_side.mp4",
                             fps=base.settings.fps)
    record = build_record(kind="compare", model=model.describe(), settings=tuned.settings.to_dict(),
                          adapters=tuned.adapters, files={"base": "base.mp4", "tuned": "tuned.mp4",
                                                          "side_by_side": side.name}, **scores)
    atomic.write_json(out_dir / "metrics.json", record)
    paths = {"base": out_dir / "base.mp4", "tuned": out_dir / "tuned.mp4", "side_by_side": side,
             "metrics": out_dir / "metrics.json"}
    return CompareResult(base=base, tuned=tuned, metrics=record, paths=paths)


METRIC_LABELS = {
    "clip_text": "CLIP-SIM text",
    "clip_image": "CLIP-SIM image",
    "clip_consistency": "CLIP frame consistency",
    "lpips_temporal": "LPIPS temporal",
    "flicker": "flicker (VBench)",
    "lpips_pair": "LPIPS base vs tuned",
}


def metrics_table(result: dict[str, Any]) -> list[list[Any]]:
    """Rows of (metric, base, tuned, tuned - base, better, calibrated) for display."""
    rows = []
    videos = result["videos"]
    for name, base in videos["base"].items():
        tuned = videos["tuned"][name]
        better = "higher" if base["higher_is_better"] else "lower"
        rows.append([METRIC_LABELS.get(name, name), round(base["mean"], 4), round(tuned["mean"], 4),
                     round(tuned["mean"] - base["mean"], 4), better,
                     "yes" if base["calibrated"] else "NO (random weights)"])
    for name, pair in result.get("pair", {}).items():
        rows.append([METRIC_LABELS.get(name, name), None, None, round(pair["mean"], 4), "-",
                     "yes" if pair["calibrated"] else "NO (random weights)"])
    return rows
