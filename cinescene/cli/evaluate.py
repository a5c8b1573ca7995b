"""``python -m cinescene compare | metrics | eval``: judging base against tuned from the command line."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import (
    ProgressBars,
    add_adapter_args,
    add_library_arg,
    add_metrics_args,
    add_model_args,
    add_sample_args,
    library,
    metrics_config,
    model_spec,
    sample_settings,
    warn_uncalibrated,
)


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("compare", help="base against tuned from one image, prompt and seed, with metrics")
    add_model_args(p)
    add_sample_args(p)
    add_adapter_args(p)
    add_metrics_args(p)
    p.add_argument("--out", required=True,
                   help="folder: base.mp4, tuned.mp4, side_by_side.mp4, metrics.json, per_frame.csv")
    p.add_argument("--reference", default=None,
                   help="a reference clip: adds both videos' look distance to it and LPIPS against it")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("metrics", help="score existing videos; JSON on stdout")
    p.add_argument("video")
    p.add_argument("other", nargs="?", default=None, help="a second video: adds paired LPIPS and differences")
    p.add_argument("--prompt", default=None, help="for CLIP-SIM text")
    p.add_argument("--image", default=None, help="the input still, for CLIP-SIM image")
    p.add_argument("--reference", default=None,
                   help="a reference clip: adds the look distance to it (colour grade) and LPIPS against it")
    add_metrics_args(p)
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("eval", help="a set of prompts through base and adapter/full-model variants")
    add_model_args(p)
    p.add_argument("--set", required=True, dest="set_file", help="JSONL or CSV: image, prompt[, reference, seed]")
    p.add_argument("--out", required=True, help="folder: results.csv, summary.md, summary.json, videos/")
    p.add_argument("--variant", action="append", default=[],
                   help="LABEL=style:NAME[:W],motion:NAME[:W] or LABEL=model:FOLDER (repeatable)")
    p.add_argument("--distances", default="auto",
                   help="Frechet distances against the reference clips: auto (every one the set and --frames allow), "
                        "none, or a comma list of FVD_16, FVD_128, FID_128, FID_all (the number is the clip length "
                        "in frames; FID_all uses every frame)")
    p.add_argument("--i3d", default=None, help="StyleGAN-V's i3d_torchscript.pt for FVD "
                                               "(default: $CINESCENE_I3D or ~/.cache/cinescene/)")
    p.add_argument("--inception", default=None, help="NVIDIA's inception-2015-12-05.pt (TorchScript) for FID "
                                                     "(default: $CINESCENE_INCEPTION or ~/.cache/cinescene/)")
    add_sample_args(p, with_image=False)  # the set gives images and prompts; these are the rest of the shot
    add_library_arg(p)
    add_metrics_args(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_eval)


def cmd_compare(args: argparse.Namespace) -> int:
    from .. import compare, loading, media, metrics, sampler

    spec = model_spec(args)
    settings = sample_settings(args, spec)
    out = compare.check_compare_inputs(settings, args.out)
    lib = library(args)
    sampler.validate_settings(settings, lib)
    image = media.load_image(args.image)
    reference = media.read_video(args.reference).frames if args.reference else None
    networks = metrics.get_networks(metrics_config(args, spec.model))
    model = loading.get_model(spec)
    bars = ProgressBars(enabled=not args.quiet)
    try:
        result = compare.compare(model, image, settings, out, lib, networks, on_event=bars, reference=reference)
    finally:
        bars.close()
    for row in compare.metrics_table(result.metrics):
        print("  ".join(str(c) for c in row))
    warn_uncalibrated(result.metrics)
    print(f"wrote {', '.join(str(p) for p in result.paths.values())}")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from .. import media, metrics

    first = media.read_video(args.video)
    second = media.read_video(args.other) if args.other else None
    image = media.load_image(args.image) if args.image else None
    reference = media.read_video(args.reference).frames if args.reference else None
    if second is not None:
        # Checked before loading the networks: a clear answer, fast.
        metrics.check_same_shape(first.frames.shape, second.frames.shape)
    networks = metrics.get_networks(metrics_config(args))
    if second is None:
        result = metrics.report(networks, {"a": metrics.score_video(networks, first.frames, args.prompt, image,
                                                                    reference)})
    else:
        result = metrics.score_pair(networks, first.frames, second.frames, args.prompt, image, labels=("a", "b"),
                                    reference=reference)
    result["files"] = {"a": args.video, **({"b": args.other} if args.other else {}),
                       **({"reference": args.reference} if args.reference else {})}
    print(json.dumps(result, indent=2))
    warn_uncalibrated(result)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .. import distances, evaluate, metrics

    spec = model_spec(args)
    wanted = distances.parse(args.distances)
    items = evaluate.read_set(args.set_file)
    variants = [evaluate.Variant.parse(v) for v in args.variant]
    template = sample_settings(args, spec).replace(prompt=items[0].prompt, adapters=())
    networks = metrics.get_networks(metrics_config(args, spec.model))
    bars = ProgressBars(enabled=not args.quiet, units={"videos": "video"})
    try:
        result = evaluate.run(spec, items, variants, template, args.out, library(args), networks,
                              i3d_path=args.i3d, inception_path=args.inception, distances=wanted, on_event=bars)
    finally:
        bars.close()
    print(evaluate.summary_markdown(result.summary))
    warn_uncalibrated(result.summary)
    print(f"wrote {', '.join(str(p) for p in result.paths.values())}")
    return 0
