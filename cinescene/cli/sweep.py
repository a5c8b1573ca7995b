"""``python -m cinescene sweep``: one shot under a grid of style x motion strengths."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from ..errors import InputError
from ..sweep import SweepGrid
from .common import (
    ProgressBars,
    add_adapter_args,
    add_dataclass_flags,
    add_model_args,
    add_sample_args,
    given,
    library,
    model_spec,
    sample_settings,
)


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("sweep", help="one image, prompt and seed under a grid of style x motion strengths")
    add_model_args(p)
    add_sample_args(p)
    add_adapter_args(p)
    add_dataclass_flags(p, SweepGrid)
    p.add_argument("--out", required=True, help="folder: grid.png, grid.mp4, cells/, cells.csv, sweep.json")
    p.add_argument("--reference", default=None, help="a reference clip: adds each cell's look distance to it")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from .. import loading, media, sweep

    spec = model_spec(args)
    settings = sample_settings(args, spec)
    names = {c.slot: c for c in settings.adapters}
    if any(c.strength != 1.0 or c.end_strength is not None for c in names.values()):
        raise InputError("give --style and --motion as NAME only: the strengths come from --style-strengths and "
                         "--motion-strengths")
    grid = SweepGrid(**given(args, SweepGrid))
    style, motion = (names[s].name if s in names else None for s in ("style", "motion"))
    sweep.check_grid(grid, style, motion)
    image = media.load_image(args.image)
    reference = media.read_video(args.reference).frames if args.reference else None
    model = loading.get_model(spec)
    bars = ProgressBars(enabled=not args.quiet)
    try:
        result = sweep.run(model, image, dataclasses.replace(settings, adapters=()), style, motion, grid, args.out,
                           library(args), on_event=bars, reference=reference)
    finally:
        bars.close()
    print(sweep.cells_csv(result.cells), end="")
    print(f"wrote {', '.join(str(p) for p in result.paths.values())}")
    return 0
