from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from cinescene import frechet
from cinescene.errors import InputError


def gaussian_set(n: int, mean: np.ndarray, cov_sqrt: np.ndarray, seed: int) -> np.ndarray:
    """Samples whose mean and (1/N) covariance are exactly ``mean`` and ``cov_sqrt @ cov_sqrt.T``."""
    d = mean.shape[0]
    x = np.random.default_rng(seed).standard_normal((n, d))
    x -= x.mean(0)
    whiten = np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False, bias=True)))
    return (x @ whiten.T) @ cov_sqrt.T + mean


def test_matches_the_closed_form_diagonal():
    d = 8
    mu1, mu2 = np.zeros(d), np.linspace(0, 1, d)
    s1, s2 = np.linspace(0.5, 2, d), np.linspace(1, 3, d)
    a = gaussian_set(200, mu1, np.diag(s1), 0)
    b = gaussian_set(300, mu2, np.diag(s2), 1)
    # Diagonal: sum (mu1 - mu2)^2 + sum (s1 - s2)^2, the standard deviations' differences.
    closed = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)
    assert frechet.frechet_distance(a, b) == pytest.approx(closed, rel=1e-9)


def test_matches_the_closed_form_full_covariance():
    d = 6
    rng = np.random.default_rng(3)
    root = rng.standard_normal((d, d)) * 0.5 + np.eye(d)
    mu = rng.standard_normal(d)
    a = gaussian_set(400, mu, root, 4)
    b = gaussian_set(400, np.zeros(d), np.eye(d), 5)
    sigma = root @ root.T
    # With S2 = I: Tr(S1) + d - 2 Tr(sqrt(S1)), and Tr(sqrt(S1)) is the sum of the square roots of its eigenvalues.
    closed = mu @ mu + np.trace(sigma) + d - 2 * np.sqrt(np.linalg.eigvalsh(sigma)).sum()
    assert frechet.frechet_distance(a, b) == pytest.approx(closed, rel=1e-9)


def test_fewer_samples_than_dimensions_stay_exact():
    # 12 videos of 400-d features: singular covariances, the usual case for an evaluation set.
    d, k = 400, 5
    s1, s2 = np.linspace(0.5, 2, k), np.linspace(1, 3, k)
    shift = np.linspace(0, 1, k)
    a, b = np.zeros((12, d)), np.zeros((12, d))
    a[:, :k] = gaussian_set(12, np.zeros(k), np.diag(s1), 6)
    b[:, :k] = gaussian_set(12, shift, np.diag(s2), 7)
    closed = np.sum(shift ** 2) + np.sum((s1 - s2) ** 2)
    assert frechet.frechet_distance(a, b) == pytest.approx(closed, rel=1e-9)
    assert frechet.frechet_distance(a, a) == 0.0


def test_agrees_with_stylegan_v_on_full_rank_covariances():
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((300, 20)), rng.standard_normal((250, 20)) @ rng.standard_normal((20, 20)) * 0.3 + 1
    # StyleGAN-V's formula, on its (1/N) covariances.
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False, bias=True), np.cov(b, rowvar=False, bias=True)
    theirs = np.real(np.square(mu_a - mu_b).sum() + np.trace(s_a + s_b - 2 * scipy.linalg.sqrtm(s_a @ s_b)))
    assert frechet.frechet_distance(a, b) == pytest.approx(theirs, rel=1e-9)
    assert frechet.distance(frechet.Gaussian.from_cov(mu_a, s_a), frechet.Gaussian.from_cov(mu_b, s_b)) == \
        pytest.approx(theirs, rel=1e-9)
    assert np.allclose(frechet.fit(a).cov, s_a)


def test_refusals():
    with pytest.raises(InputError, match="at least 2 samples"):
        frechet.frechet_distance(np.zeros((1, 4)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="feature sizes differ"):
        frechet.frechet_distance(np.zeros((3, 4)), np.zeros((3, 5)))


def test_names_carry_the_clip_length_and_the_counts_stand_beside():
    result = frechet.DistanceResult("FVD", 16, 12.5, videos=40, reference_videos=50, samples=40,
                                    reference_samples=50, protocol="p")
    assert result.name == "FVD_16"
    assert result.to_dict() == {"name": "FVD_16", "value": 12.5, "clip_frames": 16, "videos": 40,
                                "reference_videos": 50, "samples": 40, "reference_samples": 50, "protocol": "p"}


def test_check_sets_names_the_short_video():
    long, short = np.zeros((128, 2, 2, 3)), np.zeros((100, 2, 2, 3))
    frechet.check_sets([long, long], [long, long], 128, "FVD_128")
    with pytest.raises(InputError, match="FVD_128 uses 128-frame clips; reference video 2 of 2 has only 100 frames"):
        frechet.check_sets([long, long], [long, short], 128, "FVD_128")
    with pytest.raises(InputError, match="at least 2 generated and 2 reference videos"):
        frechet.check_sets([long], [long, long], 16, "FVD_16")
