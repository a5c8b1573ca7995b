"""Which Frechet distances (FVD_N, FID_N) an evaluation computes, and computing them for every variant.

The plan is made from the set and the frame count before any video is
generated: a distance that was asked for and cannot be computed is a one-line
error then, and one that was not asked for is left out with a note saying why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import fid, frechet, fvd
from .errors import InputError

# What --distances accepts. FID_all is FID on every frame the generated videos and the shortest reference clip
# share, reported as FID_N with N that frame count.
NAMES = ("FVD_16", "FVD_128", "FID_128", "FID_all")


def parse(text: str) -> tuple[str, ...] | None:
    """``auto`` -> None (every distance the set allows), ``none`` -> (), or a comma list of NAMES."""
    text = text.strip()
    if text.lower() == "auto":
        return None
    if text.lower() == "none":
        return ()
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [n for n in names if n not in NAMES]
    if unknown or not names:
        raise InputError(f"unknown distance {', '.join(unknown) or repr(text)}: use auto, none or a comma list of "
                         f"{', '.join(NAMES)}")
    return names


@dataclass(frozen=True)
class DistancePlan:
    """Which Frechet distances an evaluation computes, decided before any video is generated."""

    names: tuple[str, ...]
    all_frames: int  # frames per video of FID_all
    notes: tuple[str, ...]  # why the others are left out, for the summary

    @property
    def fvd_clips(self) -> list[int]:
        return [int(n.split("_")[1]) for n in self.names if n.startswith("FVD_")]

    @property
    def fid_clips(self) -> list[int]:
        clips = {128} if "FID_128" in self.names else set()
        return sorted(clips | ({self.all_frames} if "FID_all" in self.names else set()))


def _frames_needed(name: str) -> int:
    return 128 if name.endswith("_128") else 16 if name == "FVD_16" else 1


def plan_distances(requested: tuple[str, ...] | None, frames: int, reference_lengths: list[int],
                   i3d_given: bool = False, inception_given: bool = False) -> DistancePlan:
    """The distances to compute; a one-line error when one that was asked for cannot be.

    ``requested`` None means automatic: every distance the set and the frame count allow, the rest noted. A
    detector file given by path asks for its metric (FVD_16, FID_all) even then.
    """
    if requested == ():
        return DistancePlan((), 0, ("FVD and FID skipped: distances set to none",))
    candidates = requested or NAMES
    if requested is None:
        asked = ({"FVD_16"} if i3d_given else set()) | ({"FID_all"} if inception_given else set())
    else:
        asked = set(requested)
    shortest = min(reference_lengths, default=0)
    reasons: dict[str, str] = {}
    for name in candidates:
        need = _frames_needed(name)
        if len(reference_lengths) < 2:
            reasons[name] = f"the set has {len(reference_lengths)} reference clip(s), at least 2 needed"
        elif frames < need:
            reasons[name] = (f"the generated videos have {frames} frames, {need} needed "
                             f"(--frames {4 * math.ceil((need - 1) / 4) + 1} or more)")
        elif shortest < need:
            reasons[name] = f"the shortest reference clip has {shortest} frames, {need} needed"
        if name in reasons and name in asked:
            raise InputError(f"{name} cannot be computed: {reasons[name]}")
    grouped: dict[str, list[str]] = {}
    for name, reason in reasons.items():
        grouped.setdefault(reason, []).append(name)
    notes = tuple(f"{', '.join(names)} skipped: {reason}" for reason, names in grouped.items())
    return DistancePlan(tuple(n for n in candidates if n not in reasons), min(frames, shortest), notes)


@dataclass
class DistanceFeatures:
    """The detector features distances are computed from, kept so a caller can resample them (a bootstrap).

    ``fvd[clip][label]`` is (videos, 400) I3D features of each video's first ``clip`` frames; ``fid[label]`` is
    one (frames, 2048) Inception array per video, over the first ``fid_frames`` frames. The reference clips are
    under ``REFERENCE``. Row i of every label is the same item.
    """

    fvd: dict[int, dict[str, np.ndarray]]
    fid: dict[str, list[np.ndarray]]
    fid_frames: int


REFERENCE = "reference"  # the label of the reference clips' features


def distance_features(plan: DistancePlan, generated: dict[str, list[np.ndarray]], reference: list[np.ndarray],
                      i3d: Any, inception: Any, device: Any = None) -> DistanceFeatures:
    """Every planned detector feature of every variant's videos and of the reference clips.

    Reference features are computed once and shared by the variants; FID_128 and FID_all share one pass of
    Inception over each video.
    """
    if REFERENCE in generated:
        raise ValueError(f"{REFERENCE!r} is the reference clips' label, not a variant's")
    fvd_feats: dict[int, dict[str, np.ndarray]] = {}
    for clip in plan.fvd_clips:
        for videos in generated.values():
            frechet.check_sets(videos, reference, clip, f"FVD_{clip}")
        fvd_feats[clip] = {REFERENCE: fvd.features(i3d, reference, clip, device),
                           **{label: fvd.features(i3d, videos, clip, device) for label, videos in generated.items()}}
    fid_feats: dict[str, list[np.ndarray]] = {}
    longest = max(plan.fid_clips, default=0)
    if longest:
        for videos in generated.values():
            frechet.check_sets(videos, reference, longest, f"FID_{longest}")
        fid_feats = {label: fid.video_features(inception, videos, longest, device)
                     for label, videos in {REFERENCE: reference, **generated}.items()}
    return DistanceFeatures(fvd_feats, fid_feats, longest)


def distances_from_features(plan: DistancePlan, features: DistanceFeatures) -> dict[str, dict[str, dict[str, object]]]:
    """Every planned distance of every variant against the reference clips, by variant and name."""
    labels = [label for label in (features.fid or next(iter(features.fvd.values()), {})) if label != REFERENCE]
    out: dict[str, dict[str, dict[str, object]]] = {label: {} for label in labels}
    for clip, by_label in features.fvd.items():
        for label in labels:
            out[label][f"FVD_{clip}"] = fvd.fvd_from_features(by_label[label], by_label[REFERENCE], clip).to_dict()
    for clip in plan.fid_clips:
        for label in labels:
            out[label][f"FID_{clip}"] = fid.fid_from_features(features.fid[label], features.fid[REFERENCE],
                                                              clip).to_dict()
    return out


def compute_distances(plan: DistancePlan, generated: dict[str, list[np.ndarray]], reference: list[np.ndarray],
                      i3d: Any, inception: Any, device: Any = None) -> dict[str, dict[str, dict[str, object]]]:
    """Every planned distance of every variant's videos against the reference clips, by variant and name."""
    return distances_from_features(plan, distance_features(plan, generated, reference, i3d, inception, device))


def load_detectors(plan: DistancePlan, i3d_path: str | None = None, inception_path: str | None = None,
                   automatic: bool = False) -> tuple[Any, Any]:
    """I3D and Inception, each only when the plan needs it (None otherwise)."""
    try:
        i3d = fvd.load_i3d(i3d_path) if plan.fvd_clips else None
        inception = fid.load_inception(inception_path) if plan.fid_clips else None
    except InputError as err:
        if not automatic:
            raise
        # The user asked for nothing: say how to run without the missing file.
        raise InputError(f"{err}; or choose the distances to compute with --distances (none: no FVD or FID)") from err
    return i3d, inception
