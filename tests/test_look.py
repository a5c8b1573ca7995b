"""Look distance: far between grades, near within one, and the closed form on known colours."""

from __future__ import annotations

import numpy as np
import pytest

from cinescene import look
from cinescene.errors import InputError
from cinescene.toy import footage

H, W = 64, 112
GRADES = ("neutral", "teal-orange", "bleach-bypass", "sepia")


def pool(grade: str, seed: int, count: int = 24) -> list[np.ndarray]:
    return [footage.render_clip(footage.random_scene(np.random.default_rng([seed, i]), W / H), grade, "static", 1, H, W)
            for i in range(count)]


def test_looks_are_far_from_each_other_and_near_themselves():
    # Different scenes on the two sides: only the grade is shared.
    a = {g: pool(g, 1) for g in GRADES}
    b = {g: look.lab_stats(pool(g, 2)) for g in GRADES}
    for g in GRADES:
        same = look.look_distance(a[g], b[g])["distance"]
        others = [look.look_distance(a[g], b[o])["distance"] for o in GRADES if o != g]
        assert same < 0.6 * min(others), (g, same, others)


def test_same_content_under_two_grades():
    for i in range(3):
        s = footage.random_scene(np.random.default_rng([5, i]), W / H)
        neutral = footage.render_clip(s, "neutral", "static", 1, H, W)
        assert look.look_distance(neutral, neutral)["distance"] < 1e-6
        for grade in GRADES[1:]:
            assert look.look_distance(footage.render_clip(s, grade, "static", 1, H, W), neutral)["distance"] > 150
    bleach = look.look_distance(pool("bleach-bypass", 3, 8), pool("neutral", 3, 8))
    assert bleach["saturation"] < 0.6 * bleach["reference_saturation"]
    assert bleach["contrast"] > bleach["reference_contrast"]


def test_a_uniform_shift_in_lab_gives_its_square():
    rng = np.random.default_rng(0)
    lab = rng.normal([50, 0, 0], [10, 5, 5], size=(5000, 3))
    a, b = look.frechet.fit(lab), look.frechet.fit(lab + [0, 10, 0])
    assert look.frechet.distance(a, b) == pytest.approx(100.0, rel=1e-9)


def test_srgb_to_lab_known_values():
    assert look.srgb_to_lab(np.array([[255, 255, 255]], np.uint8))[0] == pytest.approx([100, 0, 0], abs=0.01)
    assert look.srgb_to_lab(np.array([[0, 0, 0]], np.uint8))[0] == pytest.approx([0, 0, 0], abs=0.01)
    # sRGB red in CIELAB D65 (the standard's reference value).
    assert look.srgb_to_lab(np.array([[255, 0, 0]], np.uint8))[0] == pytest.approx([53.24, 80.09, 67.20], abs=0.05)


def test_bad_frames_are_refused():
    with pytest.raises(InputError, match="RGB frames"):
        look.look_distance(np.zeros((4, 4)), np.zeros((2, 2, 3), np.uint8))
