"""What every command shares: the one-line-error parser, flags derived from the settings dataclasses, progress bars.

Flags are built from dataclass fields (``settings.ModelSpec``,
``settings.SampleSettings``, ``training.config.TrainConfig``) and their
metadata, so a new setting is one field. transformers' ``HfArgumentParser``
does this for a top-level parser; cinescene's commands are subparsers that keep
their dashed flag names and must tell "not given" from a default (config files
sit in between), hence this small builder.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import types
import typing
from typing import Any, NoReturn

from ..environment import env_flag
from ..errors import InputError
from ..progress import Event
from ..settings import METRIC_WEIGHTS, TOY, AdapterChoice, ModelSpec, SampleSettings


class Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments on one line (and exits 2, as argparse does)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _plain_type(hint: Any) -> Any:
    """``int | None`` -> int; other hints unchanged."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return hint


# Fields two settings classes share, one flag for both: ``--preset`` is the model's resolution (ModelSpec) and the
# shot's size (SampleSettings), and a command that takes both gives them one value.
SHARED_FIELDS = ("preset",)


def add_dataclass_flags(parser: argparse.ArgumentParser, cls: type, *, skip: tuple[str, ...] = (),
                        env_prefix: str | None = None, required: tuple[str, ...] = ()) -> None:
    """One flag per field of ``cls`` (``--field-name``, or the field's ``flag``); unset flags stay None.

    With ``env_prefix``, a flag's default comes from the variable ``PREFIX + FIELD_NAME`` when set (how a
    Hugging Face Space is configured).
    """
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if meta.get("cli") is False or f.name in skip:
            continue
        kind = _plain_type(hints[f.name])
        flag = meta.get("flag") or "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else None
        help_text = meta.get("help") or ""
        if default not in (None, "") and "default" not in help_text:
            help_text = f"{help_text}{'; ' if help_text else ''}default {default}"
        kwargs: dict[str, Any] = {"dest": f.name, "default": None,
                                  "help": argparse.SUPPRESS if meta.get("hidden") else help_text or None}
        variable = f"{env_prefix}{f.name.upper()}" if env_prefix else None
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
            if variable and os.environ.get(variable):
                kwargs["default"] = env_flag(variable)
        else:
            if typing.get_origin(kind) is tuple:
                args = typing.get_args(kind)
                count = "+" if len(args) == 2 and args[1] is Ellipsis else len(args)
                kwargs.update(nargs=count, type=args[0], metavar=meta.get("metavar") or args[0].__name__.upper())
            else:
                kwargs["type"] = kind
            if meta.get("choices"):
                kwargs["choices"] = meta["choices"]
            if variable and os.environ.get(variable):
                kwargs["default"] = kind(os.environ[variable])
        if f.name in required:
            kwargs["required"] = True
        try:
            parser.add_argument(flag, **kwargs)
        except argparse.ArgumentError:
            if f.name not in SHARED_FIELDS:
                raise
            # The flag is there already, with the same dest: it sets both classes' field.


def given(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The values of ``cls``'s fields that were given (flags left unset are None and dropped)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if getattr(args, f.name, None) is not None}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}  # nargs gives lists


# ModelSpec fields only one-shot commands take (see ModelSpec.parallel).
ONE_SHOT_FIELDS = ("parallel",)


def add_model_args(parser: argparse.ArgumentParser, env_prefix: str | None = None, *, parallel: bool = False) -> None:
    """The ModelSpec flags; ``parallel`` adds ``--parallel``, for commands that make one shot."""
    add_dataclass_flags(parser, ModelSpec, env_prefix=env_prefix, skip=() if parallel else ONE_SHOT_FIELDS)


def add_library_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--loras", default=None, help="adapter library folder (default: ./loras or $CINESCENE_LORAS)")


def add_adapter_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--style", default=None, metavar="NAME[:W[:END]]",
                        help="style adapter, strength W (default 1; END ramps it over the steps)")
    parser.add_argument("--motion", default=None, metavar="NAME[:W[:END]]", help="motion adapter, as --style")
    parser.add_argument("--speed", default=None, metavar="NAME[:W]",
                        help="step-distilled speed adapter (switches to its few-step settings)")
    add_library_arg(parser)


def add_sample_args(parser: argparse.ArgumentParser, with_image: bool = True) -> None:
    """The shot: every SampleSettings field; ``with_image`` adds the still and makes the prompt required."""
    if with_image:
        parser.add_argument("--image", required=True, help="the first frame (png, jpg, webp)")
    add_dataclass_flags(parser, SampleSettings, skip=() if with_image else ("prompt",),
                        required=("prompt",) if with_image else ())


def add_metrics_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clip-model", default="ViT-B-32", help="open_clip model name")
    parser.add_argument("--clip-pretrained", default="openai", help="open_clip weights tag or a local .safetensors")
    parser.add_argument("--metric-weights", choices=METRIC_WEIGHTS, default=None,
                        help="pretrained (default; error if unavailable), fallback (random if unavailable) or "
                             "random; random weights mark numbers uncalibrated. Default for --model tiny: random")
    parser.add_argument("--metrics-device", default="auto")


def library(args: argparse.Namespace) -> Any:
    from ..adapters import DEFAULT_LIBRARY, AdapterLibrary

    return AdapterLibrary(args.loras or DEFAULT_LIBRARY)


def adapter_choices(args: argparse.Namespace) -> tuple[AdapterChoice, ...]:
    choices = []
    for slot in ("style", "motion", "speed"):
        text = getattr(args, slot, None)
        if text:
            try:
                choices.append(AdapterChoice.parse(slot, text))
            except ValueError as err:
                raise InputError(f"--{slot}: {err}") from err
    return tuple(choices)


def model_spec(args: argparse.Namespace) -> ModelSpec:
    """The model flags as a ModelSpec; no --model means the 480P model on a GPU, toy on a CPU (with a note)."""
    from ..loading import auto_model

    values = given(args, ModelSpec)
    if "model" not in values:
        values["model"] = auto_model()
        if values["model"] == TOY:
            print("note: no CUDA device and no --model given: using the toy model (a small Wan trained on synthetic "
                  "footage, 64x112); on a GPU, --model Wan-AI/Wan2.1-I2V-14B-480P-Diffusers", file=sys.stderr)
    return ModelSpec(**values)


def sample_settings(args: argparse.Namespace, spec: ModelSpec) -> SampleSettings:
    """The shot flags over the model's own defaults."""
    from ..architecture import defaults_for

    values = given(args, SampleSettings)
    return defaults_for(spec.model, spec.preset).settings(values.pop("prompt", ""), adapters=adapter_choices(args),
                                                          **values)


def metrics_config(args: argparse.Namespace, spec_model: str | None = None) -> Any:
    from ..metrics import MetricsConfig, weights_for

    return MetricsConfig(clip_model=args.clip_model, clip_pretrained=args.clip_pretrained,
                         weights=weights_for(spec_model or "", args.metric_weights), device=args.metrics_device)


def warn_uncalibrated(result: dict[str, Any]) -> None:
    if result.get("uncalibrated"):
        print(f"warning: UNCALIBRATED (random network weights): {', '.join(result['uncalibrated'])}",
              file=sys.stderr)


class ProgressBars:
    """tqdm bars fed by progress events (``cinescene.progress``): one bar per task, closed when it completes."""

    def __init__(self, enabled: bool = True, units: dict[str, str] | None = None) -> None:
        self.enabled = enabled
        self.units = units or {}
        self.bars: dict[str, Any] = {}

    def __call__(self, event: Event) -> None:
        if not self.enabled or event.get("type") != "progress":
            return
        from tqdm import tqdm

        task, done, total = event["task"], int(event["done"]), int(event["total"])
        bar = self.bars.get(task)
        if bar is None:
            bar = self.bars[task] = tqdm(total=total, desc=task, unit=self.units.get(task, "step"), file=sys.stderr)
        bar.update(done - bar.n)
        postfix = {k: f"{v:.4g}" for k, v in event.items() if k in ("loss", "lr") and isinstance(v, float)}
        if postfix:
            bar.set_postfix(postfix)
        if done >= total:
            self.bars.pop(task).close()

    def write(self, text: str) -> None:
        """A line of text that does not tear the bars."""
        from tqdm import tqdm

        tqdm.write(text, file=sys.stderr)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()
