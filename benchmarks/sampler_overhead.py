"""cinescene's sampling function against a bare WanImageToVideoPipeline.__call__.

Same tiny model, same image, same arguments, runs interleaved; prints the
median of the per-round time ratios. Goal: at most 1.05 (cinescene adds validation, a progress
callback and uint8 conversion, nothing that should show).

    python benchmarks/sampler_overhead.py [--runs 9] [--model tiny] [--frames 17 --steps 8]
"""

from __future__ import annotations

import argparse

import torch

from _common import interleaved, median, paired_ratio, report
from cinescene import loading, media, sampler
from cinescene.settings import ModelSpec, SampleSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=224)
    args = parser.parse_args()

    model = loading.get_model(ModelSpec(model=args.model))
    image = media.load_image("assets/lighthouse.jpg")
    settings = SampleSettings(prompt="The lighthouse beam sweeps across the dusk sky", frames=args.frames,
                              steps=args.steps, height=args.height, width=args.width, seed=0)
    steps_seen = []
    fitted = media.fit_image(image, args.width, args.height)
    sampler.apply_shift(model.pipe, 3.0)

    def ours() -> None:
        sampler.sample(model, image, settings, on_event=lambda e: steps_seen.append(e["done"]))

    def direct() -> None:
        model.pipe(image=fitted, prompt=settings.prompt, negative_prompt=settings.negative_prompt,
                   height=args.height, width=args.width, num_frames=args.frames,
                   num_inference_steps=args.steps, guidance_scale=settings.guidance,
                   generator=torch.Generator("cpu").manual_seed(0), output_type="np")

    times = interleaved({"cinescene": ours, "direct": direct}, runs=args.runs)
    ratio = paired_ratio(times, "cinescene", "direct")
    report("sampler_overhead", ratio, "<= 1.05", ratio <= 1.05,
           f"cinescene {median(times['cinescene']):.3f} s, direct {median(times['direct']):.3f} s, "
           f"median of {args.runs} paired runs, {args.frames} frames {args.height}x{args.width}, {args.steps} steps, "
           f"model {args.model}, torch threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
