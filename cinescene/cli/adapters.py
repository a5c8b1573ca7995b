"""``python -m cinescene adapters ...``: the library from the command line."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..adapters import KINDS
from .common import Parser, add_library_arg, library


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
                 "add a .safetensors LoRA (diffusers, peft, ComfyUI, musubi or DiffSynth)")
    a.add_argument("file")
    a.add_argument("--kind", choices=KINDS, required=True)
    a.add_argument("--name", default=None, help="default: from the file name")
    a.add_argument("--base", default=None, help="the model it was trained for: hub id, folder or tiny (default: 480P)")
    a.add_argument("--description", default="")
    a.add_argument("--strength", type=float, default=1.0, help="default strength shown in the app")
    a.add_argument("--overwrite", action="store_true")
    a.add_argument("--drop-full-deltas", action="store_true",
                   help="import a file whose norm/modulation deltas a LoRA cannot hold without them (as diffusers "
                        "does); the sidecar lists them")
    a = _command(asub, "rename", cmd_adapters_rename, "rename an adapter")
    a.add_argument("name")
    a.add_argument("new_name")
    _command(asub, "remove", cmd_adapters_remove, "delete an adapter and its sidecar").add_argument("name")
    a = _command(asub, "export", cmd_adapters_export, "write an adapter for another tool")
    a.add_argument("name")
    a.add_argument("--out", required=True, help="output .safetensors")
    a.add_argument("--layout", choices=("comfyui", "diffusers"), default="comfyui")


def cmd_adapters_list(args: argparse.Namespace) -> int:
    infos = library(args).list(args.kind)
    if args.json:
        print(json.dumps([i.to_json() for i in infos], indent=2))
        return 0
    if not infos:
        print(f"no adapters in {library(args).root}")
        return 0
    print(f"{'name':24} {'kind':7} {'rank':>4} {'blocks':>6} {'size':>9}  {'base':28} targets")
    for i in infos:
        size = f"{i.size_bytes / 2**20:.1f} MB"
        flag = "" if i.hotswap else "  [slow load: " + i.hotswap_note + "]"
        print(f"{i.name:24} {i.kind:7} {i.rank:>4} {i.blocks:>6} {size:>9}  {i.base_model[:28]:28} "
              f"{','.join(i.target_modules)}{flag}")
    return 0


def cmd_adapters_inspect(args: argparse.Namespace) -> int:
    print(json.dumps(library(args).get(args.name).to_json(), indent=2, ensure_ascii=False))
    return 0


def cmd_adapters_import(args: argparse.Namespace) -> int:
    from ..architecture import transformer_skeleton
    from ..settings import HUB_480P

    lib = library(args)
    base = args.base or HUB_480P
    # The import is checked against the base model's layers; its skeleton needs no weights.
    info = lib.import_file(args.file, args.kind, name=args.name, base_model=base,
                           transformer=transformer_skeleton(base), description=args.description,
                           default_strength=args.strength, overwrite=args.overwrite,
                           drop_full_deltas=args.drop_full_deltas)
    note = "" if info.hotswap else f" (slow load: {info.hotswap_note})"
    print(f"imported {info.name} as a {info.kind} adapter: rank {info.rank}, {info.blocks} blocks, "
          f"from {info.source_format} layout, sha256 {info.sha256[:12]}{note}")
    for line in info.import_notes:
        print(f"  {line}")
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
    path = library(args).export(args.name, args.out, layout=args.layout)
    print(f"wrote {path} ({args.layout} layout)")
    return 0
