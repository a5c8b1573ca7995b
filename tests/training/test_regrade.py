from __future__ import annotations

import numpy as np

from cinescene.toy import footage
from cinescene.training.regrade import regrade


def frame(look: str = "neutral") -> np.ndarray:
    scene = footage.random_scene(np.random.default_rng(3))
    return footage.render_clip(scene, look, "static", 1, 64, 112)[0]


def test_regrade_is_a_function_of_its_generator():
    a = regrade(frame(), np.random.default_rng(5))
    assert a.dtype == np.uint8 and a.shape == (64, 112, 3)
    assert np.array_equal(a, regrade(frame(), np.random.default_rng(5)))
    assert not np.array_equal(a, regrade(frame(), np.random.default_rng(6)))


def test_a_window_is_regraded_under_one_grade():
    scene = footage.random_scene(np.random.default_rng(3))
    window = footage.render_clip(scene, "neutral", "pan-right", 5, 64, 112)
    graded = regrade(window, np.random.default_rng(5))
    assert graded.shape == window.shape
    assert all(np.array_equal(g, regrade(f, np.random.default_rng(5))) for f, g in zip(window, graded))


def test_regrade_changes_the_colours_and_keeps_the_picture():
    original = frame("teal-orange").astype(np.float64)
    for seed in range(8):
        out = regrade(frame("teal-orange"), np.random.default_rng(seed)).astype(np.float64)
        assert np.abs(out.mean((0, 1)) - original.mean((0, 1))).max() > 2  # the grade moved
        # Edges stay where they were: the luma of the two pictures is strongly correlated.
        luma = [x @ [0.299, 0.587, 0.114] for x in (original, out)]
        assert np.corrcoef(luma[0].ravel(), luma[1].ravel())[0, 1] > 0.8


def test_regrades_move_the_look_as_far_as_a_real_grade_does():
    """Regrades of a teal-orange frame are, typically, as far from it as the neutral frame is.

    Conditioned on such copies, a style adapter cannot take its look from the condition, and a crew's
    ungraded still is no further from what it was trained on than a regrade is.
    """
    from cinescene import look

    grade, spread = [], []
    for i in range(4):
        scene = footage.random_scene(np.random.default_rng(i))
        neutral, graded = (footage.render_clip(scene, k, "static", 1, 64, 112)[0] for k in ("neutral", "teal-orange"))
        grade.append(look.look_distance(neutral, graded)["distance"])
        spread.append(np.median([look.look_distance(regrade(graded, np.random.default_rng(s)), graded)["distance"]
                                 for s in range(32)]))
    assert np.mean(spread) > np.mean(grade)
