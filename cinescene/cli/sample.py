"""``python -m cinescene sample | plan``: one shot, and the budget of a shot or a training run."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..settings import HUB_480P
from .common import (
    ProgressBars,
    add_adapter_args,
    add_model_args,
    add_sample_args,
    library,
    model_spec,
    sample_settings,
)


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("sample", help="generate a video from a still and a prompt")
    add_model_args(p, parallel=True)
    add_sample_args(p)
    add_adapter_args(p)
    p.add_argument("--out", required=True, help="output .mp4; the JSON record is written beside it")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("plan", help="parameters, tokens, FLOPs and GPU memory of a run, from configs alone")
    p.add_argument("--model", default=HUB_480P)
    p.add_argument("--height", type=int, default=None, help="default: the model's landscape size at its preset")
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--frames", type=int, default=None, help="default: the model's (81; 121 for Wan2.2 TI2V-5B)")
    p.add_argument("--steps", type=int, default=None, help="default: the model's")
    p.add_argument("--guidance", type=float, default=None, help="default: the model's")
    p.add_argument("--vae-tiling", action="store_true")
    p.add_argument("--train", action="store_true", help="add the LoRA training estimate")
    p.add_argument("--train-frames", type=int, default=33, help="frames per training window")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--method", default="lora", choices=("lora", "full"),
                   help="training estimate for LoRA or for full fine-tuning (fp32 master weights, FSDP)")
    p.add_argument("--memory", default=None, help="show only this memory mode")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plan)


def cmd_sample(args: argparse.Namespace) -> int:
    from .. import architecture, context_parallel, loading, media, sampler
    from ..errors import InputError

    spec = model_spec(args)
    settings = sample_settings(args, spec)
    # Everything the user typed is checked before the (possibly minutes-long) model load.
    lib = library(args)
    sampler.validate_settings(settings, lib)
    degree = context_parallel.check_spec(spec)
    if degree == 1 and context_parallel.launched_processes() > 1:
        raise InputError("sample runs under a launcher with several processes but without --parallel: each would "
                         "make the same shot; add --parallel ulysses (or ring) to share it")
    out = sampler.check_output_path(args.out)
    image = media.load_image(args.image)
    if degree > 1:
        context_parallel.check_shot(architecture.transformer_config(spec.model), spec.parallel, degree,
                                    sampler.resolve_settings(settings, image.size))
    bars = ProgressBars(enabled=not args.quiet)
    try:
        model = loading.get_model(spec)  # with --parallel, this process joins the others here
        main = model.parallel is None or model.parallel.is_main  # the one process that writes and reports
        bars.enabled = bars.enabled and main
        if main:
            result = sampler.sample_to_file(model, image, settings, out, on_event=bars, library=lib)
        else:
            sampler.sample(model, image, settings, on_event=bars, library=lib)
    finally:
        bars.close()
        context_parallel.stop()
    if not main:
        return 0
    s = result.settings
    for note in [*model.notes, *result.speed.get("notes", [])]:
        print(f"note: {note}", file=sys.stderr)
    print(
        f"wrote {result.video_path} ({s.frames} frames, {s.width}x{s.height}, seed {s.seed}) "
        f"and {result.record_path} in {result.timings['total']:.1f} s"
    )
    if result.speed.get("cache", {}).get("mag_ratios"):
        print(f"MagCache ratios for {s.steps} steps written to {out.with_suffix('.magcache.json')}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from .. import budget
    from ..architecture import defaults_for
    from ..errors import InputError

    defaults = defaults_for(args.model)
    height, width = budget.landscape_size(defaults.preset)
    result = budget.make_plan(args.model, args.height or height, args.width or width, args.frames or defaults.frames,
                              steps=args.steps or defaults.steps,
                              guidance=args.guidance if args.guidance is not None else defaults.guidance,
                              vae_tiling=args.vae_tiling,
                              train_frames=args.train_frames if args.train else None, rank=args.rank,
                              method=args.method)
    if args.memory:
        if args.memory not in result.memory:
            raise InputError(f"unknown memory mode {args.memory!r}: {', '.join(result.memory)}")
        result.memory = {args.memory: result.memory[args.memory]}
        result.training = {k: v for k, v in result.training.items() if k == args.memory}
    print(json.dumps(result.to_dict(), indent=2) if args.json else budget.render(result))
    return 0
