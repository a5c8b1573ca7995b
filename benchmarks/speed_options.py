"""What each sampling speed option saves, side by side in one run: time and block computations.

Every option runs the same request (tiny model by default) interleaved with the
plain run; printed per option: median time ratio against ``none`` and how many
times the last transformer block actually computed. On the tiny model the VAE
and text encoder weigh relatively more than on the 14B model, so time ratios
understate what skipping blocks saves there; the computation counts carry over.

    python benchmarks/speed_options.py [--model tiny] [--steps 20] [--runs 5] [--compile]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

from _common import interleaved, median, paired_ratio
from cinescene import loading, media, sampler
from cinescene.settings import ModelSpec, SampleSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=224)
    parser.add_argument("--compile", action="store_true", help="also time regional torch.compile (inductor)")
    args = parser.parse_args()

    image = media.load_image("assets/lighthouse.jpg")
    base = SampleSettings(prompt="The lighthouse beam sweeps across the dusk sky", steps=args.steps,
                          frames=args.frames, height=args.height, width=args.width)
    model = loading.load_model(ModelSpec(model=args.model))
    calls: list[int] = []
    model.pipe.transformer.blocks[-1].attn1.to_q.register_forward_hook(lambda *a: calls.append(1))

    ratios_file = Path(tempfile.mkdtemp()) / "cal.mp4"
    sampler.sample_to_file(model, image, dataclasses.replace(base, cache="magcache-calibrate"), ratios_file)
    options = {
        "first-block 0.05": dict(cache="first-block", cache_threshold=0.05),
        "first-block 0.2": dict(cache="first-block", cache_threshold=0.2),
        "taylorseer /5": dict(cache="taylorseer", cache_interval=5),
        "magcache 0.06": dict(cache="magcache", cache_threshold=0.06,
                              mag_ratios=str(ratios_file.with_suffix(".magcache.json"))),
        "guidance 1 (no CFG)": dict(guidance=1.0),
    }
    counts: dict[str, int] = {}

    def run(s: SampleSettings, key: str) -> None:
        calls.clear()
        sampler.sample(model, image, s)
        counts[key] = len(calls)

    for label, changes in options.items():
        settings = dataclasses.replace(base, **changes)
        times = interleaved({"none": lambda: run(base, "none"), "option": lambda s=settings: run(s, "option")},
                            runs=args.runs)
        ratio = paired_ratio(times, "option", "none")
        print(f"{label:22} time ratio {ratio:.3f} ({median(times['option']):.2f} s vs {median(times['none']):.2f} s); "
              f"last-block computations {counts['option']} vs {counts['none']}")
    if args.compile:
        compiled = loading.load_model(ModelSpec(model=args.model, compile=True))
        sampler.sample(compiled, image, base)  # compile once
        times = interleaved({"eager": lambda: sampler.sample(model, image, base),
                             "compiled": lambda: sampler.sample(compiled, image, base)}, runs=args.runs)
        print(f"{'torch.compile blocks':22} time ratio {paired_ratio(times, 'compiled', 'eager'):.3f}")


if __name__ == "__main__":
    main()
