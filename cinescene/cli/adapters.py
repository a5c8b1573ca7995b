"""``python -m cinescene adapters ...``: the library from the command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from ..adapters import KINDS, AdapterInfo
from ..errors import InputError
from .common import Parser, add_dataclass_flags, add_library_arg, library

# The sidecar's placement field is the one definition; --placement and `adapters place` take its choices.
PLACEMENT = next(f for f in dataclasses.fields(AdapterInfo) if f.name == "placement")


def _command(sub: Any, name: str, func: Any, help: str) -> argparse.ArgumentParser:
    """An adapters subcommand: it always takes --loras."""
    parser = sub.add_parser(name, help=help)
    parser.set_defaults(func=func)
    add_library_arg(parser)
    return parser


def add_parsers(sub: Any) -> None:
    adapters = sub.add_parser("adapters", help="the style and motion LoRA library")
    asub = adapters.add_subparsers(dest="action", required=True, parser_class=Parser)
    a = _command(asub, "list", cmd_adapters_list, "list the library")
    a.add_argument("--kind", choices=KINDS, default=None)
    a.add_argument("--json", action="store_true", help="machine-readable output")
    _command(asub, "inspect", cmd_adapters_inspect, "show one adapter's sidecar").add_argument("name")
    a = _command(asub, "import", cmd_adapters_import,
                 "add a .safetensors LoRA (diffusers, peft, ComfyUI, musubi or DiffSynth), or a Wan2.2 pair")
    a.add_argument("file", nargs="*", help="a LoRA file; two files are a Wan2.2 pair, told apart by their names "
                                           "(high_noise / low_noise, HIGH / LOW)")
    a.add_argument("--high-noise", metavar="FILE", default=None, help="a Wan2.2 pair's high-noise half")
    a.add_argument("--low-noise", metavar="FILE", default=None, help="a Wan2.2 pair's low-noise half")
    a.add_argument("--kind", choices=KINDS, required=True)
    a.add_argument("--name", default=None, help="default: from the file name")
    a.add_argument("--base", default=None, help="the model it was trained for: hub id, folder or tiny (default: "
                                                "Wan2.1 480P, or Wan2.2 I2V A14B for a pair)")
    a.add_argument("--description", default="")
    a.add_argument("--strength", type=float, default=1.0, help="default strength shown in the app")
    a.add_argument("--overwrite", action="store_true")
    a.add_argument("--drop-full-deltas", action="store_true",
                   help="import a file whose norm/modulation deltas a LoRA cannot hold without them (as diffusers "
                        "does); the sidecar lists them")
    add_dataclass_flags(a, AdapterInfo, skip=tuple(f.name for f in dataclasses.fields(AdapterInfo)
                                                   if f.name != PLACEMENT.name))
    a = _command(asub, "place", cmd_adapters_place, "change which Wan2.2 experts an adapter acts on")
    a.add_argument("name")
    a.add_argument("placement", choices=PLACEMENT.metadata["choices"], help=PLACEMENT.metadata["help"])
    a = _command(asub, "rename", cmd_adapters_rename, "rename an adapter")
    a.add_argument("name")
    a.add_argument("new_name")
    _command(asub, "remove", cmd_adapters_remove, "delete an adapter and its sidecar").add_argument("name")
    a = _command(asub, "export", cmd_adapters_export, "write an adapter for another tool")
    a.add_argument("name")
    a.add_argument("--out", required=True, help="output .safetensors (a pair: OUT_high_noise and OUT_low_noise)")
    a.add_argument("--layout", choices=("comfyui", "diffusers"), default="comfyui")


def cmd_adapters_list(args: argparse.Namespace) -> int:
    infos = library(args).list(args.kind)
    if args.json:
        print(json.dumps([i.to_json() for i in infos], indent=2))
        return 0
    if not infos:
        print(f"no adapters in {library(args).root}")
        return 0
    print(f"{'name':24} {'kind':7} {'rank':>4} {'blocks':>6} {'size':>9}  {'placement':16} {'base':28} targets")
    for i in infos:
        size = f"{i.size_bytes / 2**20:.1f} MB"
        flag = "" if i.hotswap else "  [slow load: " + i.hotswap_note + "]"
        placement = f"pair, {i.placement}" if i.is_pair else i.placement
        print(f"{i.name:24} {i.kind:7} {i.rank:>4} {i.blocks:>6} {size:>9}  {placement:16} {i.base_model[:28]:28} "
              f"{','.join(i.target_modules)}{flag}")
    return 0


def cmd_adapters_inspect(args: argparse.Namespace) -> int:
    print(json.dumps(library(args).get(args.name).to_json(), indent=2, ensure_ascii=False))
    return 0


def pair_arguments(args: argparse.Namespace) -> tuple[str, str] | None:
    """(high-noise file, low-noise file) when the arguments name a Wan2.2 pair; None for one file."""
    files = list(args.file)
    if args.high_noise or args.low_noise:
        if files or not (args.high_noise and args.low_noise):
            raise InputError("a pair needs both --high-noise FILE and --low-noise FILE, and no other file")
        return args.high_noise, args.low_noise
    if len(files) == 2:
        from ..pair_files import sort_pair

        high, low = sort_pair(*files)
        return str(high), str(low)
    if len(files) != 1:
        raise InputError("give one LoRA file, or a Wan2.2 pair: two files, or --high-noise FILE --low-noise FILE")
    return None


def cmd_adapters_import(args: argparse.Namespace) -> int:
    from ..architecture import family, transformer_skeleton
    from ..pair_files import partner
    from ..settings import HUB_480P, HUB_WAN22_I2V

    lib = library(args)
    pair = pair_arguments(args)
    base = args.base or (HUB_WAN22_I2V if pair else HUB_480P)
    if pair and not family(base).two_experts:
        raise InputError(f"{base} has one transformer; a pair is for a two-expert model (Wan2.2 I2V A14B): "
                         "pass it with --base")
    # The import is checked against the base model's layers; its skeleton needs no weights (both experts of
    # Wan2.2 A14B have the same layers, so one skeleton checks both halves).
    options = dict(name=args.name, base_model=base, transformer=transformer_skeleton(base),
                   description=args.description, default_strength=args.strength, overwrite=args.overwrite,
                   drop_full_deltas=args.drop_full_deltas, placement=args.placement)
    if pair:
        info = lib.import_pair(*pair, args.kind, **options)
    else:
        info = lib.import_file(args.file[0], args.kind, **options)
        other = partner(args.file[0])
        if other is not None and args.placement is None:
            print(f"note: {other.name} beside it looks like the other half of a Wan2.2 pair; to import both as one "
                  f"adapter: adapters import {args.file[0]} {other} --kind {args.kind}", file=sys.stderr)
    note = "" if info.hotswap else f" (slow load: {info.hotswap_note})"
    halves = ", ".join(f"{expert} rank {part['rank']}" for expert, part in info.parts.items())
    what = f"pair ({halves}), placement {info.placement}" if info.is_pair else f"adapter: rank {info.rank}"
    print(f"imported {info.name} as a {info.kind} {what}, {info.blocks} blocks, from {info.source_format} layout, "
          f"sha256 {info.sha256[:12]}{note}")
    for line in info.import_notes:
        print(f"  {line}")
    return 0


def cmd_adapters_place(args: argparse.Namespace) -> int:
    info = library(args).set_placement(args.name, args.placement)
    print(f"{info.name} now acts on {info.placement.replace('_', '-')}"
          f"{' experts' if info.placement == 'both' else ' expert'} of a Wan2.2 A14B model")
    return 0


def cmd_adapters_rename(args: argparse.Namespace) -> int:
    info = library(args).rename(args.name, args.new_name)
    print(f"renamed {args.name} to {info.name}")
    return 0


def cmd_adapters_remove(args: argparse.Namespace) -> int:
    info = library(args).remove(args.name)
    print(f"removed {info.kind} adapter {info.name}")
    return 0


def cmd_adapters_export(args: argparse.Namespace) -> int:
    lib = library(args)
    if lib.get(args.name).is_pair:
        paths = list(lib.export_pair(args.name, args.out, layout=args.layout).values())
    else:
        paths = [lib.export(args.name, args.out, layout=args.layout)]
    print(f"wrote {' and '.join(map(str, paths))} ({args.layout} layout)")
    return 0
