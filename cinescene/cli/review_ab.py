"""``python -m cinescene review-ab`` (a choice on a compare) and ``win-rate`` (an adapter's, over all reviews)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .. import review_ab
from ..outputs import DEFAULT_OUTPUTS
from .common import add_library_arg, library


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("review-ab", help="record which side of a compare has the better look and motion "
                                         "(appended to DIR/reviews.jsonl; the app's Compare tab does it blind)")
    p.add_argument("compare", help="the compare folder (what compare --out wrote)")
    for question, asks in review_ab.QUESTIONS.items():
        p.add_argument(f"--{question}", required=True, choices=review_ab.VERDICTS, help=f"the side with the {asks}")
    p.add_argument("--note", default="", help="what you saw, in a sentence")
    p.add_argument("--reviewer", default="", help="your name, for the record")
    p.set_defaults(func=cmd_review_ab)

    p = sub.add_parser("win-rate", help="how often an adapter's side was preferred, over every review found")
    p.add_argument("adapter", help="its name in the library (or in the reviews), or its file's sha256")
    p.add_argument("--in", dest="roots", nargs="+", default=None, metavar="FOLDER",
                   help=f"where to look for reviews, recursively (default: {DEFAULT_OUTPUTS}, the app's outputs)")
    p.add_argument("--blind-only", action="store_true", help="count only blind reviews (the app's)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_library_arg(p)
    p.set_defaults(func=cmd_win_rate)


def cmd_review_ab(args: argparse.Namespace) -> int:
    judgement = review_ab.record_judgement(args.compare, {q: getattr(args, q) for q in review_ab.QUESTIONS},
                                           note=args.note, reviewer=args.reviewer)
    choices = ", ".join(f"{q} {side}" for q, side in judgement.preferred.items())
    print(f"recorded in {args.compare}/{review_ab.REVIEWS_FILE}: {choices} (not blind: the sides were named)")
    return 0


def cmd_win_rate(args: argparse.Namespace) -> int:
    roots = args.roots or [DEFAULT_OUTPUTS]
    found = review_ab.find_reviews(*roots)
    for line in found.unreadable:
        print(f"warning: left out {line}", file=sys.stderr)
    entry = library(args).find(args.adapter) if not review_ab.is_sha256(args.adapter) else None
    sha = review_ab.adapter_sha256(args.adapter, found.reviews, library_sha=entry.sha256 if entry else None)
    rates = {q: review_ab.win_rate(found.reviews, sha, q, args.blind_only) for q in review_ab.QUESTIONS}
    if args.json:
        print(json.dumps({"sha256": sha, "roots": [str(r) for r in roots], "blind_only": args.blind_only,
                          "questions": {q: rate.to_json() for q, rate in rates.items()},
                          "unreadable": found.unreadable}, indent=2))
        return 0
    any_rate = next(iter(rates.values()))
    names = ", ".join(any_rate.names) or args.adapter
    print(f"{names} (sha256 {sha[:12]}): {any_rate.reviews} review{'s' if any_rate.reviews != 1 else ''}"
          f"{' (blind only)' if args.blind_only else ''}, {any_rate.blind} blind, under {', '.join(map(str, roots))}")
    for question, rate in rates.items():
        print(f"  {question:7} {rate.text()}" + (f": tuned {rate.wins}, tie {rate.ties}, base {rate.losses}"
                                                 if rate.reviews else ""))
    return 0
