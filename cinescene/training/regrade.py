"""Random colour regrades: of a style frame, for the first frame the style stage conditions on; of a motion window.

An image-to-video model copies its first frame: given the graded still itself as the
condition, a style adapter has nothing to learn (the answer is in its input), and given
no condition at all it learns a look it never applies at sampling time, when a crew's
own (ungraded) still is the condition. So the style stage conditions each frame on a
copy of it whose grade has been randomly redone (white balance, split toning,
saturation, contrast, exposure), with the content untouched. The adapter then has to
supply the look whatever the colours of the still it is given; the motion stage and
sampling are unchanged.

A motion window's graded copies (``--motion-regrades``) take one grade for every frame: the
move is the same under any look, so the motion adapter has no look to learn with it.

The parameters are drawn from a generator seeded by the caller (the sample's identity),
so a cached encoding is reproducible. torchvision's ColorJitter would do part of this,
but not split toning, and it draws from the global RNG.
"""

from __future__ import annotations

import numpy as np

# How far a regrade may go: wide enough to undo a strong grade (a teal-orange split tone
# halves the original colours), narrow enough that shapes keep their own hues.
SATURATION = (0.5, 2.2)  # factor on chroma, drawn log-uniformly
CONTRAST = (0.7, 1.4)  # factor on luma around mid-grey, log-uniformly
EXPOSURE = 0.08  # +- shift of every channel
WHITE_BALANCE = 0.12  # +- log gain per channel
SPLIT_TONE = 0.12  # standard deviation of the colour added to shadows and, separately, to highlights

_LUMA = np.asarray([0.299, 0.587, 0.114], np.float32)


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))))


def regrade(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 (..., H, W, 3) -> the same shape: the same picture (or every frame of a window) under one random grade."""
    rgb = frame.astype(np.float32) / 255.0
    gains = np.exp(rng.uniform(-WHITE_BALANCE, WHITE_BALANCE, 3)).astype(np.float32)
    rgb = rgb * gains / float(gains @ _LUMA)  # white balance, luma kept
    luma = (rgb @ _LUMA)[..., None]
    rgb = luma + (rgb - luma) * _log_uniform(rng, SATURATION)
    shadows, highlights = (rng.normal(0.0, SPLIT_TONE, 3).astype(np.float32) for _ in range(2))
    rgb = rgb + (1.0 - luma) * shadows + luma * highlights
    rgb = 0.5 + (rgb - 0.5) * _log_uniform(rng, CONTRAST) + rng.uniform(-EXPOSURE, EXPOSURE)
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
