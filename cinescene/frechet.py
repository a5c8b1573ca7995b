"""The Frechet distance between Gaussian fits of two feature sets, and how FVD and FID results are named.

FVD, FID and any other "distance between two distributions of features" in
cinescene fit a Gaussian to each set and take

    d^2 = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)).

The covariance is normalised by N, not N - 1, as StyleGAN-V's (and
StyleGAN2-ADA's) ``FeatureStats`` does, so values match theirs on the same
features. A named result carries the clip length in frames (``FVD_16``,
``FID_128``), as StyleGAN-V names its metrics; the number of videos is reported
beside it, never in the name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class Gaussian:
    """A Gaussian fit kept as a factor F of its covariance (S = F^T F, F of shape (rank, dims))."""

    mean: np.ndarray
    factor: np.ndarray
    count: int

    @property
    def cov(self) -> np.ndarray:
        return self.factor.T @ self.factor

    @classmethod
    def from_cov(cls, mean: np.ndarray, cov: np.ndarray, count: int = 0) -> Gaussian:
        """From a covariance matrix (symmetric PSD), factored by its symmetric square root."""
        import scipy.linalg

        values, vectors = scipy.linalg.eigh(np.asarray(cov, dtype=np.float64))
        root = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
        return cls(np.asarray(mean, dtype=np.float64), root, count)


def fit(features: np.ndarray) -> Gaussian:
    """Mean and (1/N) covariance of ``features`` (samples, dims)."""
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2:
        raise ValueError(f"features must be (samples, dims), got shape {feats.shape}")
    if feats.shape[0] < 2:
        raise InputError(f"a Frechet distance needs at least 2 samples on each side, got {feats.shape[0]}")
    mean = feats.mean(axis=0)
    scaled = (feats - mean) / np.sqrt(feats.shape[0])
    # The scaled, centred samples are a factor of the covariance; with more samples than dimensions the R of their
    # QR is one too, with only as many rows as dimensions.
    factor = scaled if scaled.shape[0] <= scaled.shape[1] else np.linalg.qr(scaled, mode="r")
    return Gaussian(mean, factor, feats.shape[0])


def distance(a: Gaussian, b: Gaussian) -> float:
    """The Frechet distance of two Gaussians.

    With S_a = F_a^T F_a and S_b = F_b^T F_b, Tr((S_a S_b)^(1/2)) is the sum of
    the singular values of F_a F_b^T (both are the square roots of the same
    eigenvalues). Written by hand rather than calling scipy.linalg.sqrtm on the
    product, as StyleGAN-V and pytorch-fid do, for two reasons: with fewer
    videos than feature dimensions (400 for I3D, 2048 for Inception: nearly
    every cinescene evaluation) both covariances are singular, where sqrtm
    loses accuracy, returns complex values and needs an eps nudge that moves
    the result, while the factors are exact; and the factors of a fit have only
    as many rows as samples, so 16 videos cost a 16 x 16 SVD instead of a
    2048 x 2048 sqrtm (300 samples of 2048-d: 0.1 s against 130 s for sqrtm,
    measured on a loaded 2-core machine).
    """
    if a.mean.shape != b.mean.shape:
        raise ValueError(f"feature sizes differ: {a.mean.shape[0]} and {b.mean.shape[0]}")
    cross = np.linalg.svd(a.factor @ b.factor.T, compute_uv=False).sum()
    diff = a.mean - b.mean
    value = diff @ diff + np.sum(a.factor**2) + np.sum(b.factor**2) - 2 * cross
    # Rounding can take an exact 0 (identical sets) a hair below zero.
    return float(max(value, 0.0))


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """The Frechet distance of the Gaussian fits of two feature sets (samples, dims)."""
    return distance(fit(feats_a), fit(feats_b))


@dataclass(frozen=True)
class DistanceResult:
    """One FVD or FID number with what it was measured on."""

    metric: str  # "FVD" or "FID"
    clip_frames: int
    value: float
    videos: int
    reference_videos: int
    samples: int  # feature vectors on the generated side: videos for FVD, videos x frames for FID
    reference_samples: int
    protocol: str

    @property
    def name(self) -> str:
        return f"{self.metric}_{self.clip_frames}"

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "value": self.value, "clip_frames": self.clip_frames, "videos": self.videos,
                "reference_videos": self.reference_videos, "samples": self.samples,
                "reference_samples": self.reference_samples, "protocol": self.protocol}


def check_sets(generated: list[np.ndarray], reference: list[np.ndarray], clip_frames: int, name: str) -> None:
    """At least 2 videos a side, each at least ``clip_frames`` long, or a one-line error naming the first that is not.

    A video is anything with frames first: (T, H, W, 3) pixels or (T, dims) per-frame features.
    """
    if len(generated) < 2 or len(reference) < 2:
        raise InputError(f"{name} needs at least 2 generated and 2 reference videos (got {len(generated)} and "
                         f"{len(reference)})")
    for side, videos in (("generated", generated), ("reference", reference)):
        for index, video in enumerate(videos):
            if video.shape[0] < clip_frames:
                raise InputError(f"{name} uses {clip_frames}-frame clips; {side} video {index + 1} of {len(videos)} "
                                 f"has only {video.shape[0]} frames")
