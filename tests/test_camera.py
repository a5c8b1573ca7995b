"""Camera motion: every toy move recovered with its sign and magnitude, static footage still."""

from __future__ import annotations

import numpy as np
import pytest

from cinescene import camera
from cinescene.errors import InputError
from cinescene.toy import footage

H, W, T = 64, 112, 9


def scene(i: int) -> footage.Scene:
    return footage.random_scene(np.random.default_rng([123, i]), W / H)


@pytest.mark.parametrize("move", [m for m in footage.MOVES if m != "static"])
def test_each_move_is_recovered_with_sign_and_magnitude(move):
    for i in range(2):
        motion = camera.measure(footage.render_clip(scene(10 + i), "neutral", move, T, H, W))
        assert motion.label == move
        expected = footage.MOVE_SPEED[move]
        if move == "dolly-in":
            assert motion.zoom == pytest.approx(1 + expected, rel=0.003)
            assert motion.along(move) > 0
        else:
            assert motion.along(move) == pytest.approx(expected, rel=0.1)
            assert abs(motion.dx if move.startswith("tilt") else motion.dy) < 0.15


def test_static_footage_measures_no_motion():
    for i in range(2):
        motion = camera.measure(footage.render_clip(scene(20 + i), "grain", "static", T, H, W, seed=i))
        assert motion.label == "static"
        assert motion.magnitude < 0.1


def test_opposite_moves_have_opposite_signs():
    right = camera.measure(footage.render_clip(scene(30), "neutral", "pan-right", T, H, W))
    left = camera.measure(footage.render_clip(scene(30), "neutral", "pan-left", T, H, W))
    assert right.dx > 0 > left.dx
    assert right.along("pan-right") == pytest.approx(left.along("pan-left"), rel=0.05)


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="at least two"):
        camera.measure(np.zeros((1, 16, 16, 3), np.uint8))
    motion = camera.measure(np.zeros((2, 16, 16, 3), np.uint8))
    with pytest.raises(InputError, match="unknown camera direction"):
        motion.along("orbit")
