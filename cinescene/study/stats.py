"""A study's intervals: a paired bootstrap over the held-out items (``scipy.stats.bootstrap``).

Every arm saw the same items under the same seeds, so the arms are compared item by item: one resample draws
items with replacement, and every arm's mean and every difference between two arms are taken over that same draw
(one bootstrap per metric, whose statistic returns them all). The unit drawn is the item, not the video: the
videos of one item under several seeds are not independent, so an item's value is its mean over the seeds. FVD
and FID are statistics of a whole set: a resample refits the Gaussians of the drawn items' features, generated and
reference clips alike, which costs far more than a mean and gets its own, smaller, number of resamples. Intervals
are at 95%, and the seed makes them reproducible.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import fid, fvd
from ..distances import REFERENCE, DistanceFeatures
from .config import BASE

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Bootstrap:
    resamples: int = 10_000
    distance_resamples: int = 500
    seed: int = 0
    method: str = "percentile"


def pairs(arms: list[str]) -> list[tuple[str, str]]:
    """What a study compares: every trained arm against the base model, and LoRA against full fine-tuning."""
    out = [(arm, BASE) for arm in arms if arm != BASE]
    if "lora" in arms and "full" in arms:
        out.append(("lora", "full"))
    return out


def pair_label(pair: tuple[str, str]) -> str:
    return f"{pair[0]} - {pair[1]}"


def item_values(rows: list[dict[str, Any]], arms: list[str], metric: str,
                item_of: Callable[[int], int]) -> np.ndarray:
    """(arms, items): each arm's ``metric`` per item (its mean over the seeds), on the items every arm has it for."""
    per: dict[str, dict[int, list[float]]] = {arm: {} for arm in arms}
    for row in rows:
        value = row.get(metric)
        if row["variant"] in per and value is not None and math.isfinite(value):
            per[row["variant"]].setdefault(item_of(int(row["item"])), []).append(float(value))
    common = sorted(set.intersection(*(set(found) for found in per.values())))
    return np.array([[np.mean(per[arm][i]) for i in common] for arm in arms], dtype=float).reshape(len(arms),
                                                                                                  len(common))


def metric_intervals(values: np.ndarray, arms: list[str], settings: Bootstrap) -> dict[str, Any]:
    """Each arm's mean and each pair's mean difference, with 95% intervals, from (arms, items) values."""
    index = {arm: k for k, arm in enumerate(arms)}
    compared = pairs(arms)

    def statistic(draw: np.ndarray, axis: int = -1) -> np.ndarray:
        means = values[:, np.asarray(draw, dtype=int)].mean(axis=-1)  # (arms,) or (arms, resamples)
        return np.concatenate([means, np.stack([means[index[a]] - means[index[b]] for a, b in compared])])

    count = values.shape[1]
    if count == 0:
        return _entries(arms, compared, np.full(len(arms) + len(compared), np.nan), None, None, 0)
    low, high = _bootstrap(statistic, count, settings.resamples, settings, vectorized=True)
    return _entries(arms, compared, statistic(np.arange(count)), low, high, count)


def distance_intervals(name: str, features: DistanceFeatures, arms: list[str], positions: list[int],
                       item_of: Callable[[int], int], settings: Bootstrap) -> dict[str, Any]:
    """FVD_N or FID_N of each arm and each pair's difference, with 95% intervals over resampled items.

    ``positions[r]`` is the evaluation position of the features' row ``r``.
    """
    metric, clip = name.split("_")
    clip_frames = int(clip)
    rows_of: dict[int, list[int]] = {}
    for row, position in enumerate(positions):
        rows_of.setdefault(item_of(position), []).append(row)
    items = sorted(rows_of)
    compared = pairs(arms)

    def distance(label: str, rows: list[int]) -> float:
        if metric == "FVD":
            by_label = features.fvd[clip_frames]
            return fvd.fvd_from_features(by_label[label][rows], by_label[REFERENCE][rows], clip_frames).value
        videos, reference = features.fid[label], features.fid[REFERENCE]
        return fid.fid_from_features([videos[r] for r in rows], [reference[r] for r in rows], clip_frames).value

    def statistic(draw: np.ndarray) -> np.ndarray:
        rows = [r for i in np.asarray(draw, dtype=int) for r in rows_of[items[i]]]
        found = {arm: distance(arm, rows) for arm in arms}
        return np.array([found[arm] for arm in arms] + [found[a] - found[b] for a, b in compared])

    low, high = _bootstrap(statistic, len(items), settings.distance_resamples, settings, vectorized=False)
    return _entries(arms, compared, statistic(np.arange(len(items))), low, high, len(items))


def _bootstrap(statistic: Callable[..., np.ndarray], count: int, resamples: int, settings: Bootstrap,
               vectorized: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Interval ends of every output of ``statistic`` over ``count`` items, or None with fewer than two items."""
    import scipy.stats

    if count < 2:
        return None, None
    with warnings.catch_warnings():
        # All-equal values (a metric no arm changes) make BCa undefined: its interval is NaN, shown as n/a.
        warnings.simplefilter("ignore", scipy.stats.DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        # The data are the item indices, so that one draw indexes every arm (and, for distances, every row).
        found = scipy.stats.bootstrap((np.arange(count),), statistic, n_resamples=resamples,
                                      confidence_level=CONFIDENCE, method=settings.method, vectorized=vectorized,
                                      rng=np.random.default_rng(settings.seed))
    return np.asarray(found.confidence_interval.low), np.asarray(found.confidence_interval.high)


def _number(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _entries(arms: list[str], compared: list[tuple[str, str]], point: np.ndarray, low: np.ndarray | None,
             high: np.ndarray | None, count: int) -> dict[str, Any]:
    def entry(k: int) -> dict[str, Any]:
        interval = [None, None] if low is None or high is None else [_number(low[k]), _number(high[k])]
        return {"mean": _number(point[k]), "ci95": interval, "n": count}

    return {"arms": {arm: entry(k) for k, arm in enumerate(arms)},
            "differences": {pair_label(pair): entry(len(arms) + k) for k, pair in enumerate(compared)}}
