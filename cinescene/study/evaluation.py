"""The base model and every arm on the held-out items, through ``evaluate.run``, and what a study keeps of it.

Which FVD and FID can be computed is decided before any video: from the clips' and the videos' lengths
(``distances.plan_distances``) and from whether the detector files are on this machine. Each one left out is
named with the reason, for the report. The evaluation is kept in ``DIR/eval``: evaluate's own files, the detector
features (``features.npz``, for the bootstrap) and, written last, ``study_eval.json`` with the rows, the summary
and the settings it was made with, so that a resumed study reuses it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import atomic, evaluate, fid, fvd, metrics, progress
from ..adapters import AdapterLibrary
from ..detectors import DetectorFile
from ..detectors import load as load_detector
from ..distances import REFERENCE, DistanceFeatures, plan_distances
from ..distances import parse as parse_distances
from ..errors import InputError
from ..media import read_video
from ..settings import AdapterChoice, ModelSpec, SampleSettings
from ..training.config import TrainConfig
from .config import StudyConfig
from .items import HeldOut

FOLDER = "eval"
RECORD = "study_eval.json"
FEATURES = "features.npz"


@dataclass
class Evaluation:
    rows: list[dict[str, Any]]  # evaluate's rows: one per video (variant, item = position in the evaluation list)
    summary: dict[str, Any]  # evaluate's summary (networks, uncalibrated metrics, FVD/FID values)
    not_computed: list[str]  # the distances left out, each with the reason
    features: DistanceFeatures | None
    reference_positions: list[int]  # the evaluation positions with a reference clip: the features' rows
    reference_camera: dict[str, float]  # mean camera motion of the held-out clips themselves


def plan(config: StudyConfig, template: SampleSettings, held: HeldOut) -> tuple[tuple[str, ...], list[str]]:
    """The distances to compute and a note for each one that will not be.

    Asked for by name (``distances`` or a detector path in the config), one that cannot be computed is an error
    before any work; in ``auto``, one whose detector file is missing is left out with a note saying where to put it.
    """
    requested = parse_distances(config.distances)
    lengths = [len(read_video(i.reference).frames) for i in held.items if i.reference] * len(held.seeds)
    found = plan_distances(requested, template.frames, lengths, i3d_given=bool(config.i3d),
                           inception_given=bool(config.inception))
    notes = list(found.notes)
    names = []
    for name in found.names:
        detector, path = (fvd.I3D, config.i3d) if name.startswith("FVD") else (fid.INCEPTION, config.inception)
        missing = _missing(detector, path)
        if missing and (requested is not None or path):
            raise InputError(missing)
        if missing:
            notes.append(f"{name} not computed: {missing}")
        else:
            names.append(name)
    return tuple(names), notes


def _missing(detector: DetectorFile, path: str | None) -> str | None:
    """Why the detector cannot be loaded (the detectors module's own message), or None when it can."""
    try:
        load_detector(detector, path)
    except InputError as err:
        return str(err)
    return None


def variants(config: StudyConfig, arms: dict[str, TrainConfig]) -> list[evaluate.Variant]:
    """The trained arms as eval variants: the LoRA adapter on the base model, the fine-tuned transformer."""
    out = []
    for arm, c in arms.items():
        if c.method == "lora":
            out.append(evaluate.Variant(arm, (AdapterChoice(c.stage, c.name),)))
        else:
            out.append(evaluate.Variant(arm, model=str(Path(c.models_dir) / c.name)))
    return out


def run(config: StudyConfig, arms: dict[str, TrainConfig], held: HeldOut, template: SampleSettings, out: Path,
        fingerprint: dict[str, Any], on_event: progress.OnEvent | None = None) -> Evaluation:
    """Evaluate base and every arm (``evaluate.run``), keep what the report needs, and return it."""
    first = next(iter(arms.values()))
    names, notes = plan(config, template, held)
    networks = metrics.get_networks(metrics.MetricsConfig(weights=metrics.weights_for(first.model,
                                                                                      first.metric_weights)))
    items = held.evaluation
    result = evaluate.run(ModelSpec(model=first.model), items, variants(config, arms),
                          template.replace(prompt=items[0].prompt), out / FOLDER, AdapterLibrary(first.loras_dir),
                          networks, i3d_path=config.i3d, inception_path=config.inception, distances=names,
                          on_event=progress.as_task(on_event, "evaluating"))
    positions = [p for p, item in enumerate(items) if item.reference]
    cameras = [metrics.camera_motion(read_video(i.reference).frames).values for i in held.items if i.reference]
    camera = {k: float(np.mean([c[k] for c in cameras])) for k in ("dx", "dy", "zoom")} if cameras else {}
    evaluation = Evaluation(result.rows, result.summary, notes, result.features, positions, camera)
    save(out / FOLDER, evaluation, fingerprint)
    return evaluation


def load(out: Path, fingerprint: dict[str, Any]) -> Evaluation | None:
    """The kept evaluation, if it was made with these settings on these arms; else None."""
    record_path = out / FOLDER / RECORD
    if not record_path.is_file():
        return None
    record = json.loads(record_path.read_text())
    if record.get("fingerprint") != fingerprint:
        return None
    features = None
    if record["features"] is not None:
        with np.load(out / FOLDER / FEATURES) as data:
            stored = dict(data)
        spec = record["features"]
        features = DistanceFeatures(
            {int(clip): {label: stored[f"fvd/{clip}/{label}"] for label in spec["labels"]} for clip in spec["fvd"]},
            {label: [stored[f"fid/{label}/{i}"] for i in range(spec["fid_videos"])] for label in spec["labels"]}
            if spec["fid_frames"] else {},
            spec["fid_frames"])
    return Evaluation(record["rows"], record["summary"], record["not_computed"], features,
                      record["reference_positions"], record["reference_camera"])


def save(folder: Path, evaluation: Evaluation, fingerprint: dict[str, Any]) -> None:
    """Keep ``evaluation`` in ``folder``: the features, then its record (written last: the sign it is complete)."""
    spec = None
    features = evaluation.features
    if features is not None:
        arrays = {f"fvd/{clip}/{label}": a for clip, by_label in features.fvd.items() for label, a in by_label.items()}
        arrays.update({f"fid/{label}/{i}": a for label, videos in features.fid.items() for i, a in enumerate(videos)})
        with atomic.atomic_path(folder / FEATURES) as tmp:
            np.savez(tmp, **arrays)
        labels = list(features.fid or next(iter(features.fvd.values())))
        spec = {"labels": labels, "fvd": list(features.fvd), "fid_frames": features.fid_frames,
                "fid_videos": len(features.fid.get(REFERENCE, []))}
    # Last: its presence says the evaluation is complete.
    atomic.write_json(folder / RECORD, {"fingerprint": fingerprint, "rows": evaluation.rows,
                                        "summary": evaluation.summary, "not_computed": evaluation.not_computed,
                                        "features": spec, "reference_positions": evaluation.reference_positions,
                                        "reference_camera": evaluation.reference_camera})
