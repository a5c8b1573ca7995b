"""The study's paired bootstrap: items, not videos, are drawn; every arm and difference over the same draws."""

from __future__ import annotations

import numpy as np
import pytest

from cinescene import fvd
from cinescene.distances import DistanceFeatures
from cinescene.study import stats

SETTINGS = stats.Bootstrap(resamples=2000, distance_resamples=200, seed=0)
ARMS = ["base", "lora", "full"]


def rows_of(values: dict[str, list[float | None]], seeds: int = 1) -> list[dict]:
    """Eval rows: ``values[arm][position]``, position = item * seeds + seed."""
    return [{"variant": arm, "item": p, "look_distance": v} for arm, vs in values.items() for p, v in enumerate(vs)]


def test_an_items_value_is_its_mean_over_the_seeds_on_the_items_every_arm_has():
    rows = rows_of({"base": [1.0, 3.0, 10.0, 20.0, 5.0, None], "lora": [2.0, 2.0, 11.0, 21.0, 6.0, 7.0]})
    values = stats.item_values(rows, ["base", "lora"], "look_distance", lambda p: p // 2)
    # Items 0 and 1 (positions 0-3) in both arms; item 2 lacks base's second seed but has the first.
    assert values.tolist() == [[2.0, 15.0, 5.0], [2.0, 16.0, 6.5]]
    nothing = stats.item_values(rows_of({"base": [None, None], "lora": [1.0, 2.0]}), ["base", "lora"],
                                "look_distance", lambda p: p)
    assert nothing.shape == (2, 0)


def test_differences_are_paired_item_by_item():
    rng = np.random.default_rng(1)
    base = rng.normal(100, 30, 12)  # items differ a lot from each other ...
    values = np.stack([base, base + 5.0, base - 2.0 + rng.normal(0, 0.5, 12)])  # ... the arms by little
    found = stats.metric_intervals(values, ARMS, SETTINGS)
    lora = found["differences"]["lora - base"]
    assert lora["mean"] == pytest.approx(5.0) and lora["ci95"] == pytest.approx([5.0, 5.0])
    full = found["differences"]["full - base"]
    assert -3.0 < full["ci95"][0] < full["mean"] < full["ci95"][1] < -1.0 and full["n"] == 12
    assert found["differences"]["lora - full"]["mean"] == pytest.approx(lora["mean"] - full["mean"])
    # Each arm's own interval is as wide as the spread of the items; the paired differences are not.
    low, high = found["arms"]["base"]["ci95"]
    assert high - low > 10 * (full["ci95"][1] - full["ci95"][0]) and low < base.mean() < high
    assert stats.metric_intervals(values, ARMS, SETTINGS) == found  # seeded
    assert stats.metric_intervals(values, ARMS, stats.Bootstrap(2000, 200, seed=1)) != found
    one = stats.metric_intervals(values[:, :1], ARMS, SETTINGS)
    assert one["arms"]["lora"] == {"mean": pytest.approx(base[0] + 5), "ci95": [None, None], "n": 1}


def test_distances_are_refitted_on_each_draw_of_items_with_their_reference_clips():
    rng = np.random.default_rng(2)
    items, seeds = 6, 2
    reference = rng.normal(0, 1, (items * seeds, fvd.FEATURE_DIM))
    full = reference + 0.5 + rng.normal(0, 0.3, reference.shape)
    # Base and LoRA give the reference clips' own features: 0 on every draw, if the reference is drawn alike.
    features = DistanceFeatures({16: {"reference": reference, "base": reference.copy(), "lora": reference.copy(),
                                      "full": full}}, {}, 0)
    found = stats.distance_intervals("FVD_16", features, ARMS, list(range(items * seeds)), lambda p: p // seeds,
                                     SETTINGS)
    zero = {"mean": pytest.approx(0.0, abs=1e-9), "ci95": pytest.approx([0.0, 0.0], abs=1e-9), "n": items}
    assert found["arms"]["base"] == zero  # items are drawn, each with both seeds' videos and their reference
    assert found["arms"]["full"]["mean"] == fvd.fvd_from_features(full, reference, 16).value
    assert found["differences"]["lora - base"] == zero
    low, high = found["differences"]["full - base"]["ci95"]
    assert 0 < low < found["differences"]["full - base"]["mean"] < high
