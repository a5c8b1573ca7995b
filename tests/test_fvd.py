from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from cinescene import fvd
from cinescene.errors import InputError


def gaussian_set(n: int, mean: np.ndarray, cov_sqrt: np.ndarray, seed: int) -> np.ndarray:
    """Samples whose *sample* mean and covariance are exactly ``mean`` and ``cov_sqrt @ cov_sqrt.T``."""
    d = mean.shape[0]
    x = np.random.default_rng(seed).standard_normal((n, d))
    x -= x.mean(0)
    whiten = np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False)))
    return (x @ whiten.T) @ cov_sqrt.T + mean


def test_frechet_distance_matches_the_closed_form_diagonal():
    d = 8
    mu1, mu2 = np.zeros(d), np.linspace(0, 1, d)
    s1, s2 = np.linspace(0.5, 2, d), np.linspace(1, 3, d)
    a = gaussian_set(200, mu1, np.diag(s1), 0)
    b = gaussian_set(300, mu2, np.diag(s2), 1)
    closed = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)
    assert fvd.frechet_distance(a, b) == pytest.approx(closed, rel=1e-3)


def test_frechet_distance_matches_the_closed_form_full_covariance():
    d = 6
    rng = np.random.default_rng(3)
    root = rng.standard_normal((d, d)) * 0.5 + np.eye(d)
    mu = rng.standard_normal(d)
    a = gaussian_set(400, mu, root, 4)
    b = gaussian_set(400, np.zeros(d), np.eye(d), 5)
    sigma = root @ root.T
    # With S2 = I: Tr(S1) + d - 2 Tr(sqrt(S1)).
    closed = mu @ mu + np.trace(sigma) + d - 2 * np.trace(scipy.linalg.sqrtm(sigma).real)
    assert fvd.frechet_distance(a, b) == pytest.approx(closed, rel=1e-3)


def clip(seed: int, frames: int = 16, h: int = 40, w: int = 56) -> np.ndarray:
    return (np.random.default_rng(seed).random((frames, h, w, 3)) * 255).astype(np.uint8)


def test_fvd_through_a_torchscript_detector(i3d_standin):
    i3d = fvd.load_i3d(i3d_standin)
    assert fvd.load_i3d(i3d_standin) is i3d  # loaded once
    generated = [clip(s) for s in range(4)]
    reference = [clip(s, h=64, w=48) for s in range(10, 14)]
    result = fvd.fvd(i3d, generated, reference)
    assert result.name == "FVD-4" and result.value > 0
    same = fvd.fvd(i3d, generated, generated)
    assert abs(same.value) < 1e-3 * result.value
    assert result.to_dict()["reference_videos"] == 4


def test_preprocessing_follows_stylegan_v():
    out = fvd.preprocess(clip(0, frames=20, h=90, w=160))
    assert out.shape == (3, 16, 224, 224)
    assert out.min() >= -1 and out.max() <= 1


def test_fvd_refusals(tmp_path, i3d_standin):
    with pytest.raises(InputError, match="i3d_torchscript.pt"):
        fvd.load_i3d(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(InputError, match="not a TorchScript"):
        fvd.load_i3d(tmp_path / "junk.pt")
    i3d = fvd.load_i3d(i3d_standin)
    with pytest.raises(InputError, match="at least 2"):
        fvd.fvd(i3d, [clip(0)], [clip(1), clip(2)])
    with pytest.raises(InputError, match="16-frame clips"):
        fvd.fvd(i3d, [clip(0, frames=9), clip(1)], [clip(1), clip(2)])
