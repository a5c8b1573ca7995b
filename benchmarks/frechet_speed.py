"""cinescene's Frechet distance against StyleGAN-V's scipy.linalg.sqrtm formula, on an evaluation-sized set.

``cinescene``: frechet.frechet_distance (Gaussian fits kept as covariance
factors, the trace term from one small SVD). ``sqrtm``: the formula StyleGAN-V
and pytorch-fid run, ``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 sqrtm(S_a S_b))``, on
the same (1/N) covariances, their computation included. Default: FVD on 64
videos (400-d I3D features); ``--dims 2048 --samples 1296`` is FID on 16
videos of 81 frames. Goal: ratio <= 0.5; the two values and their relative
difference are printed too (with fewer samples than dimensions sqrtm works on
singular matrices, where it is the less accurate of the two).

    python benchmarks/frechet_speed.py [--runs 5] [--dims 400] [--samples 64]
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.linalg

from _common import interleaved, median, paired_ratio, report
from cinescene import frechet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dims", type=int, default=400)
    parser.add_argument("--samples", type=int, default=64)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    mix = rng.standard_normal((args.dims, args.dims)) / np.sqrt(args.dims)
    a = rng.standard_normal((args.samples, args.dims)) @ mix
    b = rng.standard_normal((args.samples, args.dims)) @ mix * 1.1 + 0.05
    values: dict[str, float] = {}

    def ours() -> None:
        values["cinescene"] = frechet.frechet_distance(a, b)

    def sqrtm() -> None:
        mu_a, mu_b = a.mean(0), b.mean(0)
        s_a, s_b = np.cov(a, rowvar=False, bias=True), np.cov(b, rowvar=False, bias=True)
        root = scipy.linalg.sqrtm(s_a @ s_b)
        values["sqrtm"] = float(np.real(np.square(mu_a - mu_b).sum() + np.trace(s_a + s_b - 2 * root)))

    times = interleaved({"cinescene": ours, "sqrtm": sqrtm}, runs=args.runs)
    ratio = paired_ratio(times, "cinescene", "sqrtm")
    diff = abs(values["cinescene"] - values["sqrtm"]) / abs(values["sqrtm"])
    report("frechet_speed", ratio, "<= 0.5", ratio <= 0.5,
           f"cinescene {median(times['cinescene']) * 1e3:.1f} ms, sqrtm {median(times['sqrtm']) * 1e3:.1f} ms on "
           f"{args.samples} samples of {args.dims}-d a side; values {values['cinescene']:.6g} and "
           f"{values['sqrtm']:.6g} (relative difference {diff:.2g}), {args.runs} paired runs")


if __name__ == "__main__":
    main()
