"""``toy-data`` (toy footage as a training dataset) and ``toy-evidence`` (does fine-tuning teach a look and a move?)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..settings import TOY
from ..toy.evidence import MOTION, STYLE, Evaluation
from ..toy.footage import DEMO, ToyDataset
from ..training.config import STYLE_CONDITIONS
from .common import ProgressBars, add_dataclass_flags, given

# What the checks' thresholds were set for: only which stills and seeds are sampled is the user's to choose.
EVALUATION_FIXED = tuple(f.name for f in dataclasses.fields(Evaluation)
                         if f.name not in ("stills", "seeds", "eval_seed"))


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("toy-data", help="write toy footage (clips, stills, captions) in the layout the trainer reads")
    p.add_argument("out", help="a new folder")
    p.add_argument("--demo", action="store_true",
                   help="the demo set: teal-orange clips panning right with content-only captions, and stills "
                        "(flags below still override it)")
    add_dataclass_flags(p, ToyDataset)
    p.set_defaults(func=cmd_toy_data)

    p = sub.add_parser("toy-evidence", help="train a style and a motion adapter on the demo set through `train`, "
                                            "then measure what each changes (look distance, camera motion)")
    p.add_argument("out", help="a new folder: the data, runs, adapters, evidence.json and contact_sheet.png")
    p.add_argument("--model", default=TOY, help="base model (default: toy)")
    p.add_argument("--learning-rate", type=float, default=None,
                   help="both stages' learning rate (default: the recipe's; 0 is the control that must fail)")
    p.add_argument("--style-condition", choices=STYLE_CONDITIONS, default=None,
                   help="what the style stage's frames are conditioned on (default: the recipe's, regraded; blank "
                        "shows why)")
    p.add_argument("--adapters", metavar="LORAS", default=None,
                   help=f"measure the {STYLE} and {MOTION} adapters of this library instead of training them "
                        "(--adapters loras checks the shipped demo adapters)")
    add_dataclass_flags(p, Evaluation, skip=EVALUATION_FIXED)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_toy_evidence)


def cmd_toy_data(args: argparse.Namespace) -> int:
    from ..toy import footage

    spec = dataclasses.replace(DEMO if args.demo else ToyDataset(), **given(args, ToyDataset))
    entries = footage.make_dataset(args.out, spec)
    clips = sum(e["kind"] == "clip" for e in entries)
    print(f"wrote {clips} clips and {len(entries) - clips} stills ({', '.join(spec.looks)}; {', '.join(spec.moves)}; "
          f"{spec.height}x{spec.width}) to {args.out}")
    return 0


def cmd_toy_evidence(args: argparse.Namespace) -> int:
    # Each step is the command a user would type: the evidence covers the command line, not only the library.
    from ..adapters import AdapterLibrary
    from ..toy import evidence
    from . import main

    out = Path(args.out)
    evaluation = dataclasses.replace(Evaluation(), **given(args, Evaluation))
    if evaluation.stills < 1 or not evaluation.seeds:
        raise InputError("--stills must be at least 1 and --seeds must name at least one seed")
    loras = Path(args.adapters) if args.adapters else out / "loras"
    if args.adapters:
        if args.learning_rate is not None or args.style_condition is not None:
            raise InputError("--adapters measures adapters already trained: --learning-rate and --style-condition "
                             "are for training them")
        library = AdapterLibrary(loras)
        for kind, name in (("style", STYLE), ("motion", MOTION)):
            library.get(name, kind=kind)  # before any work: a clear error if one is missing
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out} already exists and is not an empty folder: choose a new one")
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    quiet = ["--quiet"] if args.quiet else []
    steps = [["toy-data", str(data), "--demo"]]  # the target footage's speed is measured on it
    for stage, name in () if args.adapters else (("style", STYLE), ("motion", MOTION)):
        changes: dict[str, Any] = {} if args.learning_rate is None else {"learning_rate": args.learning_rate}
        if stage == "style" and args.style_condition is not None:
            changes["style_condition"] = args.style_condition
        settings = evidence.train_settings(stage, name, args.model, data, out, **changes)
        steps.append(["train", *evidence.train_flags(settings), *quiet])
    for argv in steps:
        print("$ python -m cinescene " + " ".join(argv), flush=True)
        code = main(argv)
        if code:
            return code
    bars = ProgressBars(enabled=not args.quiet)
    result = evidence.run_checks(args.model, loras, data, out, evaluation, on_event=bars)
    print("\n".join(evidence.summary_lines(result)))
    print(f"wrote {out / 'evidence.json'} and {out / 'contact_sheet.png'}")
    return 0 if result["passed"] else 1
