"""``python -m cinescene compare | metrics | eval``: judging base against tuned from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .cli import _add_adapter_args, _add_model_args, _add_sample_args, _StepBar, library, model_spec, sample_settings
from .config import METRIC_WEIGHTS


def add_metrics_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clip-model", default="ViT-B-32", help="open_clip model name")
    parser.add_argument("--clip-pretrained", default="openai", help="open_clip weights tag or a local .safetensors")
    parser.add_argument("--metric-weights", choices=METRIC_WEIGHTS, default=None,
                        help="pretrained (default; error if unavailable), fallback (random if unavailable) or "
                             "random; random weights mark numbers uncalibrated. Default for --model tiny: random")
    parser.add_argument("--metrics-device", default="auto")


def add_eval_parsers(sub: Any) -> None:
    p = sub.add_parser("compare", help="base against tuned from one image, prompt and seed, with metrics")
    _add_model_args(p)
    _add_sample_args(p)
    _add_adapter_args(p)
    add_metrics_args(p)
    p.add_argument("--out", required=True, help="folder: base.mp4, tuned.mp4, side_by_side.mp4, metrics.json")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("metrics", help="score existing videos; JSON on stdout")
    p.add_argument("video")
    p.add_argument("other", nargs="?", default=None, help="a second video: adds paired LPIPS and differences")
    p.add_argument("--prompt", default=None, help="for CLIP-SIM text")
    p.add_argument("--image", default=None, help="the input still, for CLIP-SIM image")
    add_metrics_args(p)
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("eval", help="a set of prompts through base and adapter/full-model variants")
    _add_model_args(p)
    p.add_argument("--set", required=True, dest="set_file", help="JSONL or CSV: image, prompt[, reference, seed]")
    p.add_argument("--out", required=True, help="folder: results.csv, summary.md, summary.json, videos/")
    p.add_argument("--variant", action="append", default=[],
                   help="LABEL=style:NAME[:W],motion:NAME[:W] or LABEL=model:FOLDER (repeatable)")
    p.add_argument("--i3d", default=None, help="StyleGAN-V i3d_torchscript.pt for FVD (default: ~/.cache/cinescene/)")
    p.add_argument("--no-fvd", action="store_true", help="skip FVD even when the set has reference clips")
    for flag, kind in (("--seed", int), ("--steps", int), ("--frames", int), ("--guidance", float),
                       ("--shift", float), ("--height", int), ("--width", int)):
        p.add_argument(flag, type=kind, default=None)
    p.add_argument("--preset", default=None)
    p.add_argument("--negative-prompt", default=None)
    p.add_argument("--fps", type=int, default=None)
    p.add_argument("--loras", default=None)
    add_metrics_args(p)
    p.set_defaults(func=cmd_eval, prompt="(from the set)", style=None, motion=None, speed=None)


def metrics_config(args: argparse.Namespace, spec_model: str | None = None) -> Any:
    from .metrics import MetricsConfig, weights_for

    return MetricsConfig(clip_model=args.clip_model, clip_pretrained=args.clip_pretrained,
                         weights=weights_for(spec_model or "", args.metric_weights), device=args.metrics_device)


def warn_uncalibrated(result: dict[str, Any]) -> None:
    if result.get("uncalibrated"):
        print(f"warning: UNCALIBRATED (random network weights): {', '.join(result['uncalibrated'])}",
              file=sys.stderr)


def cmd_compare(args: argparse.Namespace) -> int:
    from . import compare, loading, media, metrics, sampler

    spec = model_spec(args)
    settings = sample_settings(args, spec)
    out = compare.check_compare_inputs(settings, args.out)
    lib = library(args)
    sampler.validate_settings(settings, lib)
    image = media.load_image(args.image)
    networks = metrics.get_networks(metrics_config(args, spec.model))
    model = loading.get_model(spec)
    bars: dict[str, _StepBar] = {}

    def on_progress(stage: str, step: int, total: int) -> None:
        if args.quiet or stage == "scoring":
            return
        bars.setdefault(stage, _StepBar(stage))(step, total, {})

    result = compare.compare(model, image, settings, out, lib, networks, on_progress=on_progress)
    for row in compare.metrics_table(result.metrics):
        print("  ".join(str(c) for c in row))
    warn_uncalibrated(result.metrics)
    print(f"wrote {', '.join(str(p) for p in result.paths.values())}")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from . import media, metrics

    first = media.read_video(args.video)
    second = media.read_video(args.other) if args.other else None
    image = media.load_image(args.image) if args.image else None
    if second is not None:
        # Checked before loading the networks: a clear answer, fast.
        metrics.check_same_shape(first.frames.shape, second.frames.shape)
    networks = metrics.get_networks(metrics_config(args))
    if second is None:
        result = metrics.report(networks, {"a": metrics.score_video(networks, first.frames, args.prompt, image)})
    else:
        result = metrics.score_pair(networks, first.frames, second.frames, args.prompt, image, labels=("a", "b"))
    result["files"] = {"a": args.video, **({"b": args.other} if args.other else {})}
    print(json.dumps(result, indent=2))
    warn_uncalibrated(result)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from . import evaluate, metrics

    spec = model_spec(args)
    items = evaluate.read_set(args.set_file)
    variants = [evaluate.Variant.parse(v) for v in args.variant]
    template = sample_settings(args, spec).replace(prompt=items[0].prompt, adapters=())
    networks = metrics.get_networks(metrics_config(args, spec.model))
    bar = _StepBar("videos")
    result = evaluate.run(spec, items, variants, template, args.out, library(args), networks, i3d_path=args.i3d,
                          use_fvd=not args.no_fvd, on_progress=lambda done, total, label: bar(done, total, {}))
    bar.close()
    print(evaluate.summary_markdown(result.summary))
    warn_uncalibrated(result.summary)
    print(f"wrote {', '.join(str(p) for p in result.paths.values())}")
    return 0
