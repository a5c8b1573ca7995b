"""Base against tuned: the same image, prompt and seed, one loaded pipeline, then every metric.

Writes ``DIR/metrics.json`` (every score, with its series) and ``DIR/per_frame.csv`` (one row per
frame: each per-frame series of both videos, camera dx / dy / zoom included, for a plot or a spreadsheet).
"""

from __future__ import annotations

import csv
import dataclasses
import io
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
    reference: np.ndarray | None = None,
) -> CompareResult:
    """Generate base (every slot at 0) and tuned (the chosen adapters) from one seed, score, write DIR/.

    ``reference``: frames of a reference clip; both videos are then also scored against it (look
    distance, LPIPS). Progress: the tasks in ``TASKS``, base and tuned per denoising step.
    """
    out_dir = check_compare_inputs(settings, out_dir)
    sampler.validate_settings(settings, library)
    out_dir.mkdir(exist_ok=True)
    base = sampler.sample_to_file(model, image, dataclasses.replace(settings, adapters=()), out_dir / "base.mp4",
                                  on_event=progress.as_task(on_event, "base"), library=library)
    tuned = sampler.sample_to_file(model, image, settings, out_dir / "tuned.mp4",
                                   on_event=progress.as_task(on_event, "tuned"), library=library)
    progress.report(on_event, "scoring", 0, 1)
    scores = metrics.score_pair(networks, base.frames, tuned.frames, prompt=settings.prompt, image=image,
                                reference=reference)
    progress.report(on_event, "scoring", 1, 1)
    side = media.write_video(np.concatenate([base.frames, tuned.frames], axis=2), out_dir / "side_by_side.mp4",
                             fps=base.settings.fps)
    record = build_record(kind="compare", model=model.describe(), settings=tuned.settings.to_dict(),
                          adapters=tuned.adapters, files={"base": "base.mp4", "tuned": "tuned.mp4",
                                                          "side_by_side": side.name, "per_frame": "per_frame.csv"},
                          **scores)
    atomic.write_json(out_dir / "metrics.json", record)
    atomic.write_text(out_dir / "per_frame.csv", per_frame_csv(record))
    paths = {"base": out_dir / "base.mp4", "tuned": out_dir / "tuned.mp4", "side_by_side": side,
             "metrics": out_dir / "metrics.json", "per_frame": out_dir / "per_frame.csv"}
    return CompareResult(base=base, tuned=tuned, metrics=record, paths=paths)


METRIC_LABELS = {
    "clip_text": "CLIP-SIM text",
    "clip_image": "CLIP-SIM image",
    "clip_consistency": "CLIP frame consistency",
    "lpips_temporal": "LPIPS temporal",
    "flicker": "flicker (VBench)",
    "lpips_reference": "LPIPS to the reference",
    "lpips_pair": "LPIPS base vs tuned",
}
# Camera values in the table: (value, label). Signs are the camera's.
CAMERA_ROWS = (("dx", "camera dx (px/frame, + pans right)"), ("dy", "camera dy (px/frame, + tilts down)"),
               ("zoom", "camera zoom (per frame, > 1 dollies in)"))


def _calibrated(entry: dict[str, Any]) -> str:
    return "yes" if entry["calibrated"] else "NO (random weights)"


def _diff(a: float, b: float) -> float:
    return round(b - a, 4)


def metrics_table(result: dict[str, Any]) -> list[list[Any]]:
    """Rows of (metric, base, tuned, tuned - base, better, calibrated) for display.

    The series metrics first, then camera motion, the look distance to the reference (when there is
    one), and the pair rows: LPIPS and look distance of tuned against base, with both sides' saturation
    and contrast.
    """
    rows = []
    videos = result["videos"]
    base_scores, tuned_scores = videos["base"], videos["tuned"]
    for name, base in base_scores.items():
        if "series" not in base:  # a measurement (camera, look): rows of its own below
            continue
        tuned = tuned_scores[name]
        better = "higher" if base["higher_is_better"] else "lower"
        rows.append([METRIC_LABELS.get(name, name), round(base["mean"], 4), round(tuned["mean"], 4),
                     _diff(base["mean"], tuned["mean"]), better, _calibrated(base)])
    if "camera" in base_scores:
        base, tuned = base_scores["camera"], tuned_scores["camera"]
        rows.append(["camera motion", base["label"], tuned["label"], None, "-", _calibrated(base)])
        for key, label in CAMERA_ROWS:
            rows.append([label, round(base[key], 4), round(tuned[key], 4), _diff(base[key], tuned[key]), "-",
                         _calibrated(base)])
    if "look" in base_scores:
        base, tuned = base_scores["look"], tuned_scores["look"]
        rows.append(["look distance to the reference", round(base["distance"], 4), round(tuned["distance"], 4),
                     _diff(base["distance"], tuned["distance"]), "lower", _calibrated(base)])
    for name, pair in result.get("pair", {}).items():
        if name == "look_pair":
            # look_pair measures tuned against base: its own values are tuned's, reference_* base's.
            rows.append(["look distance tuned vs base", None, None, round(pair["distance"], 4), "lower: closer",
                         _calibrated(pair)])
            for key, label in (("saturation", "saturation (mean Lab chroma)"), ("contrast", "contrast (sd of L*)")):
                base_value, tuned_value = pair[f"reference_{key}"], pair[key]
                rows.append([label, round(base_value, 4), round(tuned_value, 4), _diff(base_value, tuned_value),
                             "-", _calibrated(pair)])
        else:
            rows.append([METRIC_LABELS.get(name, name), None, None, round(pair["mean"], 4), "-", _calibrated(pair)])
    return rows


def per_frame(result: dict[str, Any]) -> dict[str, list[float | None]]:
    """Every per-frame series of a compare result as columns over the frames (``frame`` first).

    Columns are ``LABEL_METRIC`` (``base_flicker``, ``tuned_camera_dx``) and the pair series by name
    (``lpips_pair``). Metrics on consecutive pairs start at frame 1; a cell with no value is None.
    """
    series: dict[str, list[float]] = {}
    starts: dict[str, int] = {}
    for label, scores in result["videos"].items():
        for name, entry in scores.items():
            start = 1 if name in metrics.CONSECUTIVE else 0
            if "series" in entry:
                series[f"{label}_{name}"], starts[f"{label}_{name}"] = entry["series"], start
            elif name == "camera":
                for i, key in enumerate(("dx", "dy", "zoom")):
                    column = f"{label}_camera_{key}"
                    series[column], starts[column] = [p[i] for p in entry["pairs"]], start
    for name, entry in result.get("pair", {}).items():
        if "series" in entry:
            series[name], starts[name] = entry["series"], 0
    frames = max((starts[c] + len(v) for c, v in series.items()), default=0)
    columns: dict[str, list[float | None]] = {"frame": list(range(frames))}
    for column, values in series.items():
        start = starts[column]
        columns[column] = [values[i - start] if 0 <= i - start < len(values) else None for i in range(frames)]
    return columns


def per_frame_csv(result: dict[str, Any]) -> str:
    """``per_frame`` as CSV text (empty cells where a series has no value)."""
    columns = per_frame(result)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(columns))
    for row in zip(*columns.values()):
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue()
