"""``python -m cinescene``: the command line over the same core functions the app uses."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from .config import MEMORY_MODES, PRESETS, TINY
from .errors import CinesceneError
from .speed import CACHE_KINDS


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments on one line (and exits 2, as argparse does)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        help="hub id, local diffusers folder, or 'tiny' (default: the 480P model on a GPU, tiny on a CPU)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--memory", default="none",
                        choices=MEMORY_MODES,
                        help="where weights wait while not computing; auto picks from the GPU's free memory")
    parser.add_argument("--fp8", action="store_true", help="store the transformer in fp8 (half the VRAM)")
    parser.add_argument("--vae-tiling", action="store_true", help="decode the video in tiles (less VRAM)")
    parser.add_argument("--attention", default="native", help="attention backend: native, flash, sage, ...")
    parser.add_argument("--compile", action="store_true", help="torch.compile the transformer blocks")
    parser.add_argument("--compile-backend", default="inductor", help=argparse.SUPPRESS)
    parser.add_argument("--speed-slot", action="store_true",
                        help="prepare the speed adapter slot at load time (needed with --compile)")
    parser.add_argument("--transformer", default=None, help="a fully fine-tuned transformer folder to use instead")


def add_library_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--loras", default=None, help="adapter library folder (default: ./loras or $CINESCENE_LORAS)")


def _add_adapter_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--style", default=None, metavar="NAME[:W[:END]]",
                        help="style adapter, strength W (default 1; END ramps it over the steps)")
    parser.add_argument("--motion", default=None, metavar="NAME[:W[:END]]", help="motion adapter, as --style")
    parser.add_argument("--speed", default=None, metavar="NAME[:W]",
                        help="step-distilled speed adapter (switches to its few-step settings)")
    add_library_arg(parser)


def _add_sample_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", required=True, help="the first frame (png, jpg, webp)")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--negative-prompt", default=None, help="default: Wan's own negative prompt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (model default: 40)")
    parser.add_argument("--frames", type=int, default=None, help="4k+1, at most 241 (model default: 81)")
    parser.add_argument("--guidance", type=float, default=None, help="classifier-free guidance (default 5.0)")
    parser.add_argument("--shift", type=float, default=None, help="flow shift (default: 3.0 at 480P, 5.0 at 720P)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None, help="target pixel area")
    parser.add_argument("--height", type=int, default=None, help="multiple of 16 (default: from the image)")
    parser.add_argument("--width", type=int, default=None, help="multiple of 16 (default: from the image)")
    parser.add_argument("--fps", type=int, default=None, help="frame rate of the written mp4 (default 16)")
    parser.add_argument("--cache", default=None, choices=CACHE_KINDS,
                        help="step caching: skip block computations that change little between steps")
    parser.add_argument("--cache-threshold", type=float, default=None,
                        help="first-block / magcache threshold (higher: faster, rougher)")
    parser.add_argument("--cache-interval", type=int, default=None, help="taylorseer: full steps every N")
    parser.add_argument("--mag-ratios", default=None, help="the .magcache.json a magcache-calibrate run wrote")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m cinescene", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("sample", help="generate a video from a still and a prompt")
    _add_model_args(p)
    _add_sample_args(p)
    _add_adapter_args(p)
    p.add_argument("--out", required=True, help="output .mp4; the JSON record is written beside it")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sample)

    from .cli_adapters import add_adapters_parser
    from .cli_eval import add_eval_parsers
    from .cli_train import add_train_parser

    p = sub.add_parser("plan", help="parameters, tokens, FLOPs and GPU memory of a run, from configs alone")
    p.add_argument("--model", default="Wan-AI/Wan2.1-I2V-14B-480P-Diffusers")
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=832)
    p.add_argument("--frames", type=int, default=81)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--guidance", type=float, default=5.0)
    p.add_argument("--vae-tiling", action="store_true")
    p.add_argument("--train", action="store_true", help="add the LoRA training estimate")
    p.add_argument("--train-frames", type=int, default=33, help="frames per training window")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--memory", default=None, help="show only this memory mode")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plan)
    add_adapters_parser(sub, _Parser)
    add_eval_parsers(sub)
    add_train_parser(sub)
    return parser


def library(args: argparse.Namespace) -> Any:
    from .adapters import DEFAULT_LIBRARY, AdapterLibrary

    return AdapterLibrary(args.loras or DEFAULT_LIBRARY)


def adapter_choices(args: argparse.Namespace) -> tuple[Any, ...]:
    from .config import AdapterChoice
    from .errors import InputError

    choices = []
    for slot in ("style", "motion", "speed"):
        text = getattr(args, slot, None)
        if text:
            try:
                choices.append(AdapterChoice.parse(slot, text))
            except ValueError as err:
                raise InputError(f"--{slot}: {err}") from err
    return tuple(choices)


def model_spec(args: argparse.Namespace) -> Any:
    from .config import ModelSpec
    from .loading import auto_model

    model = args.model
    if model is None:
        model = auto_model()
        if model == TINY:
            print(
                "note: no CUDA device and no --model given: using the tiny offline model (its pictures are noise)",
                file=sys.stderr,
            )
    return ModelSpec(model=model, device=args.device, memory=args.memory, vae_tiling=args.vae_tiling,
                     transformer=args.transformer, fp8=args.fp8, attention=args.attention, compile=args.compile,
                     compile_backend=args.compile_backend, speed_slot=args.speed_slot)


def sample_settings(args: argparse.Namespace, spec: Any) -> Any:
    from .loading import defaults_for

    defaults = defaults_for(spec.model)
    return defaults.settings(
        args.prompt,
        negative_prompt=args.negative_prompt,
        seed=args.seed,
        steps=args.steps,
        frames=args.frames,
        guidance=args.guidance,
        shift=args.shift,
        preset=args.preset,
        height=args.height,
        width=args.width,
        fps=args.fps,
        adapters=adapter_choices(args),
        cache=getattr(args, "cache", None),
        cache_threshold=getattr(args, "cache_threshold", None),
        cache_interval=getattr(args, "cache_interval", None),
        mag_ratios=getattr(args, "mag_ratios", None),
    )


class _StepBar:
    """A tqdm bar fed by the sampler's on_step callback."""

    def __init__(self, desc: str, enabled: bool = True) -> None:
        self.desc, self.enabled, self.bar = desc, enabled, None

    def __call__(self, step: int, total: int, info: dict[str, Any]) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit="step", file=sys.stderr)
        self.bar.update(step - self.bar.n)
        if step >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def cmd_sample(args: argparse.Namespace) -> int:
    from . import loading, media, sampler

    spec = model_spec(args)
    settings = sample_settings(args, spec)
    # Everything the user typed is checked before the (possibly minutes-long) model load.
    lib = library(args)
    sampler.validate_settings(settings, lib)
    out = sampler.check_output_path(args.out)
    image = media.load_image(args.image)
    model = loading.get_model(spec)
    bar = _StepBar("denoising", enabled=not args.quiet)
    try:
        result = sampler.sample_to_file(model, image, settings, out, on_step=bar, library=lib)
    finally:
        bar.close()
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
    import json

    from . import plan
    from .errors import InputError

    result = plan.make_plan(args.model, args.height, args.width, args.frames, steps=args.steps,
                            guidance=args.guidance, vae_tiling=args.vae_tiling,
                            train_frames=args.train_frames if args.train else None, rank=args.rank)
    if args.memory:
        if args.memory not in result.memory:
            raise InputError(f"unknown memory mode {args.memory!r}: {', '.join(result.memory)}")
        result.memory = {args.memory: result.memory[args.memory]}
        result.training = {k: v for k, v in result.training.items() if k == args.memory}
    print(json.dumps(result.to_dict(), indent=2) if args.json else plan.render(result))
    return 0


def quiet_libraries() -> None:
    """Keep library chatter ("Couldn't connect to the Hub ...") off the terminal; our errors say it better.

    Must run before diffusers/transformers are imported: they read these once.
    """
    for var in ("DIFFUSERS_VERBOSITY", "TRANSFORMERS_VERBOSITY"):
        os.environ.setdefault(var, "error")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def main(argv: Sequence[str] | None = None) -> int:
    quiet_libraries()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CinesceneError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
