"""``python -m cinescene review`` (a run's checkpoints on a shot list) and ``promote`` (one into the library)."""

from __future__ import annotations

import argparse
from typing import Any

from .common import ProgressBars, add_library_arg, add_model_args, add_sample_args, library, model_spec, sample_settings


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("review", help="render a shot list at every saved checkpoint of a training run")
    p.add_argument("run", help="the run folder (runs/NAME)")
    add_model_args(p)
    p.add_argument("--set", required=True, dest="set_file",
                   help="the shot list: JSONL or CSV with image, prompt[, seed] (eval's format)")
    p.add_argument("--out", required=True, help="folder: grid.mp4, grid.png, videos/, review.json")
    add_sample_args(p, with_image=False)
    add_library_arg(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_review)

    p = sub.add_parser("promote", help="put one checkpoint of a training run into the adapter library")
    p.add_argument("run", help="the run folder (runs/NAME)")
    p.add_argument("--step", type=int, required=True, help="the checkpoint's step")
    p.add_argument("--stage", choices=("style", "motion"), default=None, help="for a two-stage run")
    p.add_argument("--name", default=None, help="the adapter's name (default: RUN-STAGE-STEP)")
    p.add_argument("--overwrite", action="store_true", help="replace an adapter of the same name")
    add_library_arg(p)
    p.set_defaults(func=cmd_promote)


def cmd_review(args: argparse.Namespace) -> int:
    from .. import evaluate, loading
    from ..training import review

    review.list_checkpoints(args.run)  # a clear answer about the run before anything else
    shots = evaluate.read_set(args.set_file)
    spec = model_spec(args)
    template = sample_settings(args, spec)
    model = loading.get_model(spec)
    bars = ProgressBars(enabled=not args.quiet)
    try:
        record = review.review(model, args.run, shots, template, args.out, library(args), on_event=bars)
    finally:
        bars.close()
    for cell in record["cells"]:
        print(f"{cell['row']:<22} shot {cell['shot']}: look to base {cell['look_to_base']:.2f}, "
              f"camera dx {cell['dx']:+.2f} dy {cell['dy']:+.2f} zoom {cell['zoom']:.4f}")
    print(f"wrote {args.out}/grid.mp4, grid.png, review.json")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from .. import loading
    from ..settings import ModelSpec
    from ..training import review

    checkpoint = review.find_checkpoint(args.run, args.step, args.stage)
    config = review.run_config(args.run)
    model = loading.get_model(ModelSpec(model=config.model))
    info = review.promote(args.run, checkpoint, library(args), model, name=args.name, overwrite=args.overwrite)
    print(f"promoted {checkpoint.label} of {args.run} as {info.kind} adapter {info.name!r}")
    return 0
