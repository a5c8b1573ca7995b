"""Batch evaluation: a set of (image, prompt[, reference clip]) through several model variants.

Variants are the base model, adapter configurations on it, and fully
fine-tuned model folders. Every variant sees the same items with the same
seeds, so differences are paired. Writes ``results.csv`` (one row per video),
``summary.md`` and ``summary.json`` (mean and 95% interval per variant and
metric, and FVD_N / FID_N against the reference clips, N the clip length in
frames, where the set has at least two). Beside the network scores: the look
distance of each video to its item's reference clip, and the camera motion of
every video (dx, dy in pixels per frame, zoom per frame).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import atomic, loading, media, metrics, outputs, progress, sampler
from .adapters import AdapterLibrary
from .distances import DistanceFeatures, distance_features, distances_from_features, load_detectors, plan_distances
from .errors import InputError
from .record import build_record
from .settings import AdapterChoice, ModelSpec, SampleSettings

METRICS = ("clip_text", "clip_image", "clip_consistency", "lpips_temporal", "flicker", "lpips_reference",
           "look_distance", "camera_dx", "camera_dy", "camera_zoom")
# Which network each metric needs (None: none, always calibrated).
NETWORK = {"clip_text": "clip", "clip_image": "clip", "clip_consistency": "clip", "lpips_temporal": "lpips",
           "lpips_reference": "lpips", "flicker": None, "look_distance": None, "camera_dx": None, "camera_dy": None,
           "camera_zoom": None}
# Which way each metric is better (None: neither; the camera's motion is compared with the move asked for).
BETTER = {"clip_text": "higher", "clip_image": "higher", "clip_consistency": "higher", "lpips_temporal": "lower",
          "flicker": "higher", "lpips_reference": "lower", "look_distance": "lower", "camera_dx": None,
          "camera_dy": None, "camera_zoom": None, "FVD": "lower", "FID": "lower"}
MAX_ITEMS = 10_000


@dataclass(frozen=True)
class EvalItem:
    image: Path
    prompt: str
    reference: Path | None = None
    seed: int | None = None


@dataclass(frozen=True)
class Variant:
    """``adapters`` on the base model, or a whole other model folder (full fine-tuning) in ``model``."""

    label: str
    adapters: tuple[AdapterChoice, ...] = ()
    model: str | None = None

    @classmethod
    def parse(cls, text: str) -> Variant:
        """``LABEL=style:NAME[:W],motion:NAME[:W]`` or ``LABEL=model:FOLDER``."""
        label, sep, rest = text.partition("=")
        if not sep or not label or not rest:
            raise InputError(f"variant {text!r}: expected LABEL=style:NAME[:W],motion:NAME[:W] or LABEL=model:FOLDER")
        if rest.startswith("model:"):
            return cls(label, model=rest.removeprefix("model:"))
        choices = []
        for part in rest.split(","):
            slot, _, spec = part.partition(":")
            try:
                choices.append(AdapterChoice.parse(slot, spec))
            except ValueError as err:
                raise InputError(f"variant {label}: {err}") from err
        return cls(label, tuple(choices))


def read_set(path: str | os.PathLike[str]) -> list[EvalItem]:
    """Read a JSONL or CSV set file (columns image, prompt, optional reference and seed); paths are relative to it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"set file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((number, json.loads(line)))
                except ValueError as err:
                    raise InputError(f"{path.name} line {number}: not JSON ({err})") from err
    elif path.suffix.lower() == ".csv":
        rows = [(number, row) for number, row in enumerate(csv.DictReader(io.StringIO(text)), 2)]
    else:
        raise InputError(f"set file {path.name}: use .jsonl or .csv")
    items = []
    for number, row in rows:
        where = f"{path.name} line {number}"
        if not isinstance(row, dict) or not row.get("image") or not str(row.get("prompt") or "").strip():
            raise InputError(f"{where}: needs an image and a prompt")
        image = (path.parent / str(row["image"])).resolve()
        if not image.is_file():
            raise InputError(f"{where}: image not found: {row['image']}")
        reference = None
        if row.get("reference"):
            reference = (path.parent / str(row["reference"])).resolve()
            if not reference.is_file():
                raise InputError(f"{where}: reference clip not found: {row['reference']}")
        seed = row.get("seed")
        try:
            seed = int(seed) if seed not in (None, "") else None
        except ValueError as err:
            raise InputError(f"{where}: seed {seed!r} is not a whole number") from err
        items.append(EvalItem(image, str(row["prompt"]).strip(), reference, seed))
    if not items:
        raise InputError(f"set file {path.name} holds no items")
    if len(items) > MAX_ITEMS:
        raise InputError(f"set file {path.name} holds {len(items)} items; the limit is {MAX_ITEMS}")
    return items


def interval95(values: list[float]) -> tuple[float, float, float]:
    """Mean and Student-t 95% interval; the interval is NaN with fewer than two values."""
    import scipy.stats

    data = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if data.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(data.mean())
    if data.size < 2:
        return mean, float("nan"), float("nan")
    half = float(scipy.stats.t.ppf(0.975, data.size - 1) * data.std(ddof=1) / math.sqrt(data.size))
    return mean, mean - half, mean + half


@dataclass
class EvalResult:
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    paths: dict[str, Path] = field(default_factory=dict)
    # The FVD / FID detector features (None without distances); row i of each is the i-th item with a reference.
    features: DistanceFeatures | None = None


def run(
    spec: ModelSpec,
    items: list[EvalItem],
    variants: list[Variant],
    template: SampleSettings,
    out_dir: str | os.PathLike[str],
    library: AdapterLibrary,
    networks: metrics.MetricNetworks,
    i3d_path: str | None = None,
    inception_path: str | None = None,
    distances: tuple[str, ...] | None = None,
    on_event: progress.OnEvent | None = None,
) -> EvalResult:
    """Every item through base and every variant, scored; progress is a ``videos`` task (with ``variant``).

    ``distances`` as ``distances.parse`` gives it (None: every FVD / FID the set and frame count allow).
    """
    out_dir = outputs.check_out_folder(out_dir)
    labels = [v.label for v in variants]
    if len(set(labels)) != len(labels) or "base" in labels:
        raise InputError("variant labels must be unique and not 'base'")
    all_variants = [Variant("base"), *variants]
    for variant in all_variants:
        sampler.validate_settings(dataclasses.replace(template, prompt=items[0].prompt, adapters=variant.adapters),
                                  library)
    if template.frames < 5:
        raise InputError("evaluation needs videos of at least 5 frames: temporal metrics compare consecutive frames")
    images = [media.load_image(item.image) for item in items]
    references = {i: media.read_video(item.reference).frames for i, item in enumerate(items) if item.reference}
    plan = plan_distances(distances, template.frames, [len(r) for r in references.values()],
                          i3d_given=bool(i3d_path), inception_given=bool(inception_path))
    # The detectors load before the first video: a missing file fails in a second, not after the generation.
    i3d, inception = load_detectors(plan, i3d_path, inception_path, automatic=distances is None)

    rows: list[dict[str, Any]] = []
    videos: dict[str, list[np.ndarray]] = {}
    total, done = len(items) * len(all_variants), 0
    # Adapter variants share the base pipeline; full fine-tunes load their own, one at a time, last.
    for variant in sorted(all_variants, key=lambda v: v.model is not None):
        model = loading.get_model(_variant_spec(spec, variant))
        folder = out_dir / "videos" / variant.label
        folder.mkdir(parents=True, exist_ok=True)
        videos[variant.label] = []
        for index, (item, image) in enumerate(zip(items, images)):
            settings = dataclasses.replace(template, prompt=item.prompt, adapters=variant.adapters,
                                           seed=item.seed if item.seed is not None else template.seed)
            result = sampler.sample_to_file(model, image, settings, folder / f"{index:04d}.mp4", library=library)
            values = metrics.numbers(metrics.score_video(networks, result.frames, prompt=item.prompt, image=image,
                                                         reference=references.get(index)))
            videos[variant.label].append(result.frames)
            rows.append({"variant": variant.label, "item": index, "image": item.image.name, "prompt": item.prompt,
                         "seed": settings.seed, "video": str(result.video_path.relative_to(out_dir)),
                         **{name: values.get(name) for name in METRICS}})
            done += 1
            progress.report(on_event, "videos", done, total, variant=variant.label)

    summary = summarize(rows, all_variants, networks)
    summary["distance_notes"] = list(plan.notes)
    features = None
    if plan.names:
        # Paired with the references: each variant's videos of the items that have a reference clip.
        generated = {label: [own[i] for i in sorted(references)] for label, own in videos.items()}
        features = distance_features(plan, generated, [references[i] for i in sorted(references)], i3d, inception,
                                     networks.device)
        for label, entry in distances_from_features(plan, features).items():
            summary["variants"][label]["distances"] = entry
    paths = _write(out_dir, rows, summary, spec, template)
    return EvalResult(rows, summary, paths, features)


def _variant_spec(spec: ModelSpec, variant: Variant) -> ModelSpec:
    """A full fine-tune is either a whole pipeline folder or a transformer folder on the same base."""
    if not variant.model:
        return spec
    if loading.is_transformer_folder(variant.model):
        return dataclasses.replace(spec, transformer=variant.model)
    return dataclasses.replace(spec, model=variant.model)


def summarize(rows: list[dict[str, Any]], variants: list[Variant], networks: metrics.MetricNetworks) -> dict[str, Any]:
    """Per variant and metric of ``METRICS``: mean, 95% interval and count over the rows that have it."""
    summary: dict[str, Any] = {"networks": networks.describe(), "variants": {}}
    ok = {None: True, "clip": networks.clip_calibrated, "lpips": networks.lpips_calibrated}
    calibrated = {name: ok[NETWORK[name]] for name in METRICS}
    summary["uncalibrated"] = sorted(k for k, v in calibrated.items() if not v)
    for variant in variants:
        own = [r for r in rows if r["variant"] == variant.label]
        entry: dict[str, Any] = {"videos": len(own), "adapters": [dataclasses.asdict(a) for a in variant.adapters],
                                 "model": variant.model, "metrics": {}}
        for name in METRICS:
            values = [r[name] for r in own if r[name] is not None]
            if values:
                mean, low, high = interval95(values)
                entry["metrics"][name] = {"mean": mean, "ci95": [low, high], "n": len(values),
                                          "calibrated": calibrated[name]}
        summary["variants"][variant.label] = entry
    return summary


def _fmt(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"


def summary_markdown(summary: dict[str, Any]) -> str:
    names = [m for m in METRICS if any(m in v["metrics"] for v in summary["variants"].values())]
    lines = ["# cinescene evaluation", "",
             "Mean and 95% interval (Student t) per variant; same items and seeds for every variant.", ""]
    if summary["uncalibrated"]:
        lines += [f"**Uncalibrated (random network weights): {', '.join(summary['uncalibrated'])}.** "
                  "These numbers only show that the pipeline runs.", ""]
    distances = list(dict.fromkeys(n for v in summary["variants"].values() for n in v.get("distances", {})))
    header = ["variant", "videos", *names, *distances]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, entry in summary["variants"].items():
        cells = [label, str(entry["videos"])]
        for name in names:
            m = entry["metrics"].get(name)
            cells.append("n/a" if m is None else f"{_fmt(m['mean'])} [{_fmt(m['ci95'][0])}, {_fmt(m['ci95'][1])}]")
        for name in distances:
            d = entry.get("distances", {}).get(name)
            cells.append(f"{d['value']:.2f} (n={d['videos']})" if d else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    if distances:
        first = next(d for v in summary["variants"].values() for d in v.get("distances", {}).values())
        lines += ["", "FVD_N and FID_N: Frechet distances of the first N frames of each video (N is the clip length "
                  f"in frames) against {first['reference_videos']} reference clips; n is the number of generated "
                  "videos. Compare them only at the same N and n."]
    if summary.get("distance_notes"):
        lines += ["", *(f"- {note}." for note in summary["distance_notes"])]
    lines += ["", "Higher is better for clip_text, clip_image, clip_consistency and flicker; lower for "
              "lpips_temporal, lpips_reference, look_distance, FVD and FID. look_distance is the Frechet distance of "
              "Lab colour fits to the item's reference clip (squared Lab units). camera_dx and camera_dy are the "
              "camera's motion in pixels per frame (+ pans right, + tilts down), camera_zoom its zoom per frame "
              "(> 1 dollies in): neither better nor worse, compare them with the move asked for. Networks: "
              + json.dumps(summary["networks"], ensure_ascii=False), ""]
    return "\n".join(lines)


def _write(out_dir: Path, rows: list[dict[str, Any]], summary: dict[str, Any], spec: ModelSpec,
           template: SampleSettings) -> dict[str, Path]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    paths = {"results": out_dir / "results.csv", "summary": out_dir / "summary.md",
             "summary_json": out_dir / "summary.json"}
    atomic.write_text(paths["results"], buffer.getvalue())
    atomic.write_text(paths["summary"], summary_markdown(summary))
    atomic.write_json(paths["summary_json"], build_record(kind="eval", model={"id": spec.model},
                                                          settings=template.to_dict(), **summary))
    return paths
