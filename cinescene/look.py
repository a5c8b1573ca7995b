"""Look distance without a pretrained network: how far apart two sets of frames are in colour grade.

Each side's pixels are converted to CIELAB (D65, the sRGB standard illuminant)
and fitted with a Gaussian (mean and 3x3 covariance); the distance is the
Fréchet distance between the two fits (``frechet``: the formula of FID and FVD,
here on pixels instead of network features). It is in squared Lab units: a
uniform shift of 10 in a* alone gives 100. Contrast (standard deviation of L*)
and saturation (mean chroma, sqrt(a*^2 + b*^2)) are reported beside it, since
they say *how* two looks differ.

Content matters too (a red scene is redder than a blue one): compare pools of
many frames, or the same content under two grades, not single unrelated frames.
The conversion is written out (a dozen lines of the sRGB and CIELAB
definitions) because none of cinescene's libraries converts colour spaces;
scikit-image or OpenCV would be a new dependency for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import frechet
from .errors import InputError

# sRGB (linear) -> XYZ, D65 (IEC 61966-2-1).
_RGB_TO_XYZ = np.asarray([[0.4124564, 0.3575761, 0.1804375],
                          [0.2126729, 0.7151522, 0.0721750],
                          [0.0193339, 0.1191920, 0.9503041]])
_WHITE = np.asarray([0.95047, 1.0, 1.08883])
MAX_PIXELS = 200_000  # an evenly strided subset above this: plenty for a 3x3 covariance, and deterministic


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB, uint8 or float in [0, 1] -> (..., 3) L*a*b* (L* in [0, 100])."""
    x = rgb.astype(np.float64) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    linear = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _WHITE
    eps = (6 / 29) ** 3
    f = np.where(xyz > eps, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


@dataclass(frozen=True)
class LabStats:
    """The Gaussian fit of a set of frames' Lab pixels, with the two numbers a colourist reads off it."""

    fit: frechet.Gaussian
    saturation: float  # mean chroma

    @property
    def mean(self) -> np.ndarray:
        return self.fit.mean

    @property
    def contrast(self) -> float:
        """Standard deviation of L*."""
        return float(np.sqrt(self.fit.cov[0, 0]))


def _pixels(frames: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    arrays = [np.asarray(a) for a in ([frames] if isinstance(frames, np.ndarray) else frames)]
    if not arrays or any(a.ndim < 2 or a.shape[-1] != 3 for a in arrays) or sum(a.size for a in arrays) < 6:
        raise InputError("a look distance needs RGB frames (..., 3) with at least two pixels")
    return np.concatenate([a.reshape(-1, 3) for a in arrays])


def lab_stats(frames: np.ndarray | Sequence[np.ndarray], max_pixels: int = MAX_PIXELS) -> LabStats:
    """Gaussian fit of the Lab pixel distribution of a video, a frame, or a list of them (pooled)."""
    pixels = _pixels(frames)
    if len(pixels) > max_pixels:
        pixels = pixels[:: int(np.ceil(len(pixels) / max_pixels))]
    lab = srgb_to_lab(pixels)
    return LabStats(frechet.fit(lab), float(np.hypot(lab[:, 1], lab[:, 2]).mean()))


def look_distance(frames: np.ndarray | Sequence[np.ndarray],
                  reference: np.ndarray | Sequence[np.ndarray] | LabStats) -> dict[str, float]:
    """Fréchet distance of Lab Gaussians between ``frames`` and ``reference``, with contrast and saturation of both.

    Lower is closer; 0 for the same colour distribution.
    """
    a = lab_stats(frames)
    b = reference if isinstance(reference, LabStats) else lab_stats(reference)
    return {"distance": frechet.distance(a.fit, b.fit), "contrast": a.contrast, "saturation": a.saturation,
            "reference_contrast": b.contrast, "reference_saturation": b.saturation,
            "mean_L": float(a.mean[0]), "mean_a": float(a.mean[1]), "mean_b": float(a.mean[2])}
