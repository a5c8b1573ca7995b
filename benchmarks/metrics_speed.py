"""CLIP-SIM + LPIPS through cinescene against the bare network forwards, on an 81-frame 480x832 pair.

``cinescene``: metrics.clip_image_features for both videos (open_clip's own
preprocessing per frame, batched forwards), the prompt embedding, the
cosines, and metrics.lpips_pair. ``bare``: the same CLIP and LPIPS forwards at
the same batch size on tensors prepared beforehand (preprocessing not timed),
plus the cosines. Goal: ratio <= 1.25; absolute times are printed too. Random
weights (none can be downloaded here) cost exactly what real ones do.

    python benchmarks/metrics_speed.py [--runs 3] [--frames 81] [--batch 16]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image

from _common import interleaved, median, paired_ratio, report
from cinescene import metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--weights", default="random", choices=("random", "pretrained", "fallback"))
    args = parser.parse_args()

    nets = metrics.load_networks(metrics.MetricsConfig(weights=args.weights, batch_size=args.batch))
    rng = np.random.default_rng(0)
    base = (rng.random((args.frames, args.height, args.width, 3)) * 255).astype(np.uint8)
    tuned = np.clip(base.astype(int) + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)
    prompt = "The lighthouse beam sweeps across the dusk sky"

    def ours() -> None:
        with nets.lock:
            text = metrics.clip_text_features(nets, prompt)
            for video in (base, tuned):
                (metrics.clip_image_features(nets, video) @ text).tolist()
        metrics.lpips_pair(nets, base, tuned)

    # The bare side gets its inputs ready-made: only network forwards (and cosines) are timed.
    clip_in = [torch.stack([nets.clip_preprocess(Image.fromarray(f)) for f in v]) for v in (base, tuned)]
    lp_in = [torch.from_numpy(v).permute(0, 3, 1, 2).float().div(127.5).sub(1) for v in (base, tuned)]
    tokens = nets.tokenizer([prompt])

    @torch.no_grad()
    def bare() -> None:
        text = nets.clip.encode_text(tokens).float()[0]
        text = text / text.norm()
        for video in clip_in:
            for start in range(0, len(video), args.batch):
                feats = nets.clip.encode_image(video[start:start + args.batch]).float()
                (feats / feats.norm(dim=-1, keepdim=True) @ text).tolist()
        for start in range(0, args.frames, args.batch):
            nets.lpips(lp_in[0][start:start + args.batch], lp_in[1][start:start + args.batch]).flatten().tolist()

    times = interleaved({"cinescene": ours, "bare": bare}, runs=args.runs)
    ratio = paired_ratio(times, "cinescene", "bare")
    report("metrics_speed", ratio, "<= 1.25", ratio <= 1.25,
           f"cinescene {median(times['cinescene']):.2f} s, bare forwards {median(times['bare']):.2f} s for CLIP-SIM "
           f"(2 x {args.frames} frames) + LPIPS ({args.frames} pairs at {args.width}x{args.height}), batch "
           f"{args.batch}, {args.weights} weights, torch threads {torch.get_num_threads()}, {args.runs} paired runs")


if __name__ == "__main__":
    main()
