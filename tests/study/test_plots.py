"""The study's charts: values where they belong on the panel's axis, in each arm's colour."""

from __future__ import annotations

import numpy as np
from PIL import Image

from cinescene.study import plots


def rows_in(image: np.ndarray, colour: tuple[int, int, int], columns: slice) -> np.ndarray:
    """The pixel rows where ``colour`` appears within ``columns``."""
    return np.nonzero((image[:, columns] == colour).all(-1).any(1))[0]


def test_a_higher_value_is_drawn_higher_and_its_interval_spans_its_bar(tmp_path):
    panel = plots.IntervalPanel("look_distance", ["base", "lora"], [1.0, 3.0], [0.5, 2.0], [1.5, 4.0])
    path = plots.interval_chart([panel], tmp_path / "arms.png", "title")
    image = np.asarray(Image.open(path).convert("RGB"))
    inner = plots.PANEL_W - plots.MARGIN_L - plots.MARGIN_R  # two arms: at a quarter and three quarters of it
    base, lora = (rows_in(image, plots.COLOURS[arm], slice(round(at) - 7, round(at) + 8))
                  for arm, at in (("base", plots.MARGIN_L + inner / 4), ("lora", plots.MARGIN_L + 3 * inner / 4)))
    assert base.size and lora.size
    assert lora.max() < base.min()  # lora's interval [2, 4] lies wholly above base's [0.5, 1.5]
    assert (lora.max() - lora.min()) > 1.5 * (base.max() - base.min())  # and is twice as long


def test_a_rising_score_rises_to_the_right(tmp_path):
    panel = plots.LinePanel("validation look", {"full": [(100, 5.0), (200, 7.0), (300, 9.0)]})
    path = plots.line_chart([panel], tmp_path / "training.png", "over the training steps")
    image = np.asarray(Image.open(path).convert("RGB"))[30:]  # below the legend
    colour = plots.COLOURS["full"]
    ys, xs = np.nonzero((image == colour).all(-1))
    assert xs.size
    assert ys[xs > np.percentile(xs, 90)].mean() < ys[xs < np.percentile(xs, 10)].mean()
