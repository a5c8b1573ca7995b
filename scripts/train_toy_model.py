"""Train cinescene's toy model and its demo adapters (what ships in cinescene/toy/model and loras/).

    python scripts/train_toy_model.py                 # the full run: writes cinescene/toy/model and loras/*/toy-*
    python scripts/train_toy_model.py --out /tmp/q --quick --no-adapters   # a few steps of everything
    python scripts/train_toy_model.py --out /tmp/t --vae cinescene/toy/model --no-adapters  # all but the VAE
    python scripts/train_toy_model.py --out /tmp/t --move-check-only   # judge a model on the move check's stills

The recipe is in ``cinescene/toy/base_model.py`` (the base model: ``recipe.py`` its schedule,
``vae_training.py`` its VAE stage) and ``cinescene/toy/evidence.py``
(the demo adapters, trained through ``python -m cinescene train``). Weights are reproducible for a
given ``--threads`` and kind of CPU; ``toy_model.json`` in the model folder records their sha256, the schedule,
the losses, the time every stage took and the CPU it ran on. A full run into another folder says which
files came out as the shipped ones, and how far the others are: the bytes repeat on the same kind of
CPU with the same threads. On another kind the VAE stage trains another VAE, and the transformer on it
is another model; ``--vae cinescene/toy/model`` trains the transformer on the shipped VAE instead, and
lands within rounding of the shipped transformer (docs/toy.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cinescene import architecture  # noqa: E402
from cinescene.environment import quiet_libraries  # noqa: E402
from cinescene.errors import InputError  # noqa: E402
from cinescene.toy import base_model, evidence, recipe  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(architecture.TOY_FOLDER), help="model folder to write (replaced whole)")
    parser.add_argument("--loras", default=str(ROOT / "loras"), help="adapter library for the demo adapters")
    parser.add_argument("--quick", action="store_true", help="a few steps of every stage (checks that it runs)")
    parser.add_argument("--no-adapters", action="store_true", help="the base model only")
    parser.add_argument("--adapters-only", action="store_true", help="remake the demo adapters on the model in --out")
    parser.add_argument("--vae", metavar="FOLDER",
                        help="train no VAE: use the VAE of this toy model folder (e.g. cinescene/toy/model)")
    parser.add_argument("--no-move-check", action="store_true", help="skip sampling one prompt per camera move")
    parser.add_argument("--move-check-only", action="store_true",
                        help="train nothing: run the move check on the model in --out, into its toy_model.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads (part of the recipe: the shipped weights were made with 2)")
    args = parser.parse_args(argv)
    quiet_libraries()
    folder = Path(args.out).resolve()
    if not folder.parent.is_dir():
        parser.error(f"the folder {folder.parent} does not exist")
    vae_from = Path(args.vae).resolve() if args.vae else None
    if vae_from is not None and not (vae_from / "vae" / "config.json").is_file():
        parser.error(f"--vae {args.vae}: no trained VAE there (no vae/config.json)")
    if vae_from is not None and args.adapters_only:
        parser.error("--vae trains a base model; --adapters-only trains none")
    if args.move_check_only and (vae_from is not None or args.adapters_only or args.no_move_check or args.quick):
        parser.error("--move-check-only trains nothing: it takes only --out and --threads")
    if args.move_check_only:
        try:
            log = base_model.recheck_moves(folder, threads=args.threads)
        except InputError as error:
            parser.error(str(error))
        moves = log["moves_followed"]
        each = ", ".join(f"{move} {m['followed']}/{m['of']} ({m['along']:+.2f})"
                         for move, m in moves["by_move"].items())
        print(f"{folder}: {moves['followed']} of {moves['of']} move prompts followed: {each}")
        return 0
    schedule = recipe.QUICK if args.quick else recipe.Schedule()
    if not args.adapters_only:
        log = base_model.train(folder, schedule, args.seed, args.threads, check_moves=not args.no_move_check,
                               vae_from=vae_from)
        size, seconds = log["weights_total_bytes"] / 1e6, log["total"]["wall_s"]
        print(f"wrote {folder} ({size:.1f} MB of weights) in {seconds:.0f} s")
        shipped = architecture.TOY_FOLDER / "toy_model.json"
        if folder != architecture.TOY_FOLDER.resolve() and not args.quick and shipped.is_file():
            print("\n".join(base_model.reproduction(log, json.loads(shipped.read_text()), folder,
                                                         architecture.TOY_FOLDER)))
    if not args.no_adapters:
        with tempfile.TemporaryDirectory(prefix="cinescene-demo-") as work:
            # The shipped adapters name the base as "toy", which is how a user selects it.
            model = "toy" if folder == architecture.TOY_FOLDER.resolve() else str(folder)
            made = evidence.make_demo_adapters(model, Path(work), Path(args.loras),
                                               steps_scale=0.02 if args.quick else 1.0)
        for info in made:
            print(f"wrote {info}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
