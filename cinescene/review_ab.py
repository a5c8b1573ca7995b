"""Blind A/B review of a compare: which side is shown as A, the viewer's choice, an adapter's win rate.

A compare folder (``compare.compare``: base.mp4, tuned.mp4, metrics.json) keeps its judgements beside the
numbers in ``DIR/reviews.jsonl``, one JSON object a line. A line names the real side the viewer preferred
per question (``tuned``, ``base`` or ``tie``, never A or B); a blind review also keeps how the sides were
shown and what was clicked, so an audit can check the one against the other (``Judgement.check``).

An adapter's win rate is gathered from every ``reviews.jsonl`` under the folders given (the app's
outputs folder, or wherever ``compare --out`` wrote), keyed by the sha256 of the adapter's file as the
compare record has it: a renamed adapter keeps its reviews, and one re-trained under the same name starts
afresh. Every review whose tuned side held that file counts, at any strength and beside any other adapter.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import secrets
import shutil
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from . import atomic
from .errors import InputError
from .outputs import REVIEWS_FILE
from .record import now_iso

SIDES = ("base", "tuned")
LABELS = ("A", "B")  # how the sides are shown in a blind review
TIE = "tie"
VERDICTS = ("tuned", "base", TIE)  # what a judgement stores per question
CLICKS = (*LABELS, TIE)  # what a viewer picks on screen
QUESTIONS = {"look": "better look", "motion": "better motion"}  # question -> what the viewer is asked
KIND = "ab_review"
MAX_NOTE_CHARS = 2000
MAX_REVIEWER_CHARS = 64
CONFIDENCE = 0.95
ADAPTER_KEYS = ("slot", "name", "strength", "end", "sha256")  # what a review keeps of each adapter of the compare
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def is_sha256(text: str) -> bool:
    return bool(_SHA256.match(text))


def blind_order(rng: random.Random | int | None = None) -> str:
    """The real side ("base" or "tuned") shown as A.

    An int seeds a private generator, so a test (or an audit) can reproduce an order; None draws from the
    operating system's randomness, so nobody can predict it from the shot's seed or the time of day.
    """
    if rng is None:
        rng = secrets.SystemRandom()
    elif isinstance(rng, int):
        rng = random.Random(rng)
    return rng.choice(SIDES)


def shown_as(a_side: str) -> dict[str, str]:
    """{"A": side, "B": the other side} for the side shown as A."""
    if a_side not in SIDES:
        raise InputError(f"the side shown as A must be base or tuned, not {a_side!r}")
    return {"A": a_side, "B": SIDES[1 - SIDES.index(a_side)]}


def verdict_of(click: str, a_side: str) -> str:
    """The real side a click on A, B or tie stands for."""
    return TIE if click == TIE else shown_as(a_side)[click]


@dataclass(frozen=True)
class Judgement:
    """One viewer's choice on one compare, in terms of the real sides."""

    compare: str  # the compare folder's name; the review lives inside it
    adapters: tuple[dict[str, Any], ...]  # the tuned side's adapters as the compare record lists them (sha256 too)
    preferred: dict[str, str]  # question -> "tuned", "base" or "tie"
    blind: bool = False
    shown: dict[str, str] | None = None  # blind: {"A": side, "B": side}
    clicked: dict[str, str] | None = None  # blind: question -> "A", "B" or "tie", as clicked
    note: str = ""
    reviewer: str = ""
    created: str = ""

    def check(self) -> None:
        """Raise ValueError unless every choice is well formed and a blind one follows from the clicks."""
        if set(self.preferred) != set(QUESTIONS) or not set(self.preferred.values()) <= set(VERDICTS):
            raise ValueError(f"choices {self.preferred} are not one of {', '.join(VERDICTS)} per question")
        if not all(isinstance(a, dict) and _SHA256.match(str(a.get("sha256", ""))) for a in self.adapters):
            raise ValueError("an adapter of the tuned side has no sha256")
        if not self.blind:
            return
        if self.shown is None or self.clicked is None or set(self.clicked) != set(QUESTIONS):
            raise ValueError("a blind review without how the sides were shown and what was clicked")
        if self.shown != shown_as(self.shown.get("A", "")):
            raise ValueError(f"sides shown as {self.shown}")
        for question, click in self.clicked.items():
            if click not in CLICKS or verdict_of(click, self.shown["A"]) != self.preferred[question]:
                raise ValueError(f"{question}: {click!r} clicked with A = {self.shown['A']} is not "
                                 f"{self.preferred[question]!r}")

    def to_json(self) -> dict[str, Any]:
        return {"kind": KIND, **dataclasses.asdict(self), "adapters": list(self.adapters)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Judgement:
        """A stored line, checked (ValueError or TypeError when it is not a sound review)."""
        if data.get("kind") != KIND:
            raise ValueError(f"kind {data.get('kind')!r} is not {KIND}")
        known = {f.name for f in dataclasses.fields(cls)}
        judgement = cls(**{k: v for k, v in data.items() if k in known})
        judgement = dataclasses.replace(judgement, adapters=tuple(judgement.adapters))
        judgement.check()
        return judgement


def compare_record(compare_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The folder's compare record (metrics.json), or a one-line error saying why there is none."""
    folder = Path(compare_dir)
    path = folder / "metrics.json"
    if not folder.is_dir():
        raise InputError(f"no compare folder at {folder}")
    if not path.is_file():
        raise InputError(f"{folder} holds no compare record (metrics.json): make one with python -m cinescene compare")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"{path} is not readable JSON: {err}") from err
    kind = record.get("kind") if isinstance(record, dict) else None
    if kind != "compare" or not record.get("adapters"):
        raise InputError(f"{path} is not a compare record (its kind is {kind!r})")
    return record


def blind_copies(compare_dir: str | os.PathLike[str], a_side: str, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """``out_dir/A.mp4`` and ``B.mp4``: the compare's two videos under names that do not say which is which.

    Hard links where the file system has them (no copy of the bytes), copies otherwise. ``out_dir`` should
    be a folder of its own, not the compare folder: a viewer who can fetch one file by name there must not
    find the labelled ones beside it.
    """
    folder = Path(compare_dir)
    files = compare_record(folder).get("files", {})
    out_dir = Path(out_dir)
    copies = {}
    for label, side in shown_as(a_side).items():
        source = folder / files.get(side, f"{side}.mp4")
        if not source.is_file():
            raise InputError(f"{folder.name} no longer holds its {side} video (cleaned up?); run the compare again")
        dest = out_dir / f"{label}{source.suffix}"
        try:
            os.link(source, dest)
        except OSError:  # another file system, or one without hard links
            with atomic.atomic_path(dest) as tmp:
                shutil.copyfile(source, tmp)
        copies[label] = dest
    return copies


def _text(value: str | None, what: str, limit: int) -> str:
    text = " ".join(str(value or "").split())
    if len(text) > limit:
        raise InputError(f"the {what} is {len(text)} characters; the limit is {limit}")
    return text


def _choices(choices: Mapping[str, str | None], allowed: tuple[str, ...]) -> dict[str, str]:
    unknown = set(choices) - set(QUESTIONS)
    if unknown:
        raise InputError(f"no question named {', '.join(sorted(unknown))}: the questions are {', '.join(QUESTIONS)}")
    out = {}
    for question, asks in QUESTIONS.items():
        value = choices.get(question)
        if value in (None, ""):
            raise InputError(f"no choice for the {asks}: choose {', '.join(allowed)}")
        if value not in allowed:
            raise InputError(f"{question}: {value!r} is not one of {', '.join(allowed)}")
        out[question] = str(value)
    return out


def record_judgement(compare_dir: str | os.PathLike[str], preferred: Mapping[str, str | None], *, note: str = "",
                     reviewer: str = "") -> Judgement:
    """Append a review naming the preferred side per question ("tuned", "base" or "tie"); not blind."""
    return _record(Path(compare_dir), _choices(preferred, VERDICTS), note=note, reviewer=reviewer)


def record_blind(compare_dir: str | os.PathLike[str], a_side: str, clicked: Mapping[str, str | None], *,
                 note: str = "", reviewer: str = "") -> Judgement:
    """Append a blind review: ``clicked`` holds "A", "B" or "tie" per question, ``a_side`` the side shown as A."""
    shown = shown_as(a_side)
    clicks = _choices(clicked, CLICKS)
    preferred = {question: verdict_of(click, a_side) for question, click in clicks.items()}
    return _record(Path(compare_dir), preferred, note=note, reviewer=reviewer, shown=shown, clicked=clicks)


def _record(folder: Path, preferred: dict[str, str], *, note: str, reviewer: str,
            shown: dict[str, str] | None = None, clicked: dict[str, str] | None = None) -> Judgement:
    record = compare_record(folder)
    judgement = Judgement(
        compare=folder.resolve().name, preferred=preferred, blind=shown is not None, shown=shown, clicked=clicked,
        adapters=tuple({k: a.get(k) for k in ADAPTER_KEYS} for a in record["adapters"]),
        note=_text(note, "note", MAX_NOTE_CHARS), reviewer=_text(reviewer, "reviewer name", MAX_REVIEWER_CHARS),
        created=now_iso())
    try:
        judgement.check()
    except ValueError as err:  # a compare record without the adapters' sha256 (made by hand, or damaged)
        raise InputError(f"{folder.name}: {err}") from None
    path = folder / REVIEWS_FILE
    # Read, add a line, replace the whole file atomically: a crash leaves the old reviews or all of them,
    # never half a line. The lock keeps two reviewers of one folder (two sessions, or app and CLI) from
    # each writing the file without the other's line.
    with FileLock(str(folder / f".{REVIEWS_FILE}.lock")):
        old = path.read_text(encoding="utf-8") if path.is_file() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        atomic.write_text(path, old + json.dumps(judgement.to_json(), ensure_ascii=False) + "\n")
    return judgement


@dataclass
class Reviews:
    """Every readable review found, and where a line could not be used (path:line: why)."""

    reviews: list[Judgement]
    unreadable: list[str]


def read_reviews(path: str | os.PathLike[str]) -> Reviews:
    """The reviews of one ``reviews.jsonl``; a damaged line is listed, not fatal."""
    path = Path(path)
    found, bad = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            found.append(Judgement.from_json(json.loads(line)))
        except (ValueError, TypeError, AttributeError) as err:
            bad.append(f"{path}:{number}: {err}")
    return Reviews(found, bad)


def find_reviews(*roots: str | os.PathLike[str]) -> Reviews:
    """Every review in every ``reviews.jsonl`` under ``roots`` (each a folder; missing ones hold none)."""
    found, bad = [], []
    seen: set[Path] = set()
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for path in sorted(root.rglob(REVIEWS_FILE)):
            if path.resolve() in seen or not path.is_file():
                continue
            seen.add(path.resolve())
            part = read_reviews(path)
            found += part.reviews
            bad += part.unreadable
    return Reviews(found, bad)


def wilson_interval(score: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for a proportion ``score / n``.

    Why Wilson: it keeps close to its nominal coverage with the handful of reviews a crew makes, where the
    normal ("Wald") interval is far too narrow, and it needs no resampling, so the same reviews always show
    the same interval (Brown, Cai and DasGupta, "Interval Estimation for a Binomial Proportion", Statistical
    Science 2001). Written out because scipy's ``binomtest(k, n).proportion_ci(method="wilson")`` takes a
    whole number of successes and a tie, counted half, makes it a half. With ties the per-review score
    (1, 1/2 or 0) has a variance of at most p(1 - p), so the interval is, if anything, a little wide.
    """
    if n <= 0:
        raise ValueError("no reviews")
    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2)
    p = score / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class WinRate:
    """How often an adapter's side was preferred on one question; a tie counts half, as usual in pairwise
    preference studies."""

    sha256: str
    names: tuple[str, ...]  # the names its reviews knew it by
    question: str
    wins: int
    ties: int
    losses: int
    blind: int  # how many of the reviews were blind

    @property
    def reviews(self) -> int:
        return self.wins + self.ties + self.losses

    @property
    def rate(self) -> float | None:
        return (self.wins + self.ties / 2) / self.reviews if self.reviews else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.wins + self.ties / 2, self.reviews) if self.reviews else None

    def to_json(self) -> dict[str, Any]:
        low, high = self.interval or (None, None)
        return {**dataclasses.asdict(self), "names": list(self.names), "reviews": self.reviews, "rate": self.rate,
                "low": low, "high": high, "confidence": CONFIDENCE}

    def text(self) -> str:
        """"62% (95% interval 41% to 79%), 12 reviews" """
        if not self.reviews:
            return "no reviews yet"
        assert self.rate is not None and self.interval is not None
        low, high = self.interval
        return (f"{self.rate:.0%} (95% interval {low:.0%} to {high:.0%}), {self.reviews} "
                f"review{'s' if self.reviews != 1 else ''}")


def win_rate(reviews: Iterable[Judgement], sha256: str, question: str, blind_only: bool = False) -> WinRate:
    """The adapter file ``sha256``'s win rate on ``question`` over every review whose tuned side held it."""
    if question not in QUESTIONS:
        raise InputError(f"no question named {question!r}: the questions are {', '.join(QUESTIONS)}")
    counts = {"tuned": 0, TIE: 0, "base": 0}
    names: list[str] = []
    blind = 0
    for review in reviews:
        held = [a for a in review.adapters if a.get("sha256") == sha256]
        if not held or (blind_only and not review.blind):
            continue
        counts[review.preferred[question]] += 1
        blind += review.blind
        names += [str(a.get("name")) for a in held if a.get("name") not in names]
    return WinRate(sha256, tuple(names), question, counts["tuned"], counts[TIE], counts["base"], blind)


WIN_RATE_HEADERS = ["adapter", "question", "win rate", "95% interval", "tuned / tie / base", "reviews", "blind"]


def win_rate_rows(reviews: Iterable[Judgement], adapters: Iterable[Mapping[str, Any]],
                  blind_only: bool = False) -> list[list[Any]]:
    """Rows of ``WIN_RATE_HEADERS``: each adapter (slot, name, sha256, as a compare record lists them) per question."""
    reviews = list(reviews)
    rows = []
    for adapter in adapters:
        for question in QUESTIONS:
            rate = win_rate(reviews, str(adapter["sha256"]), question, blind_only)
            interval = rate.interval
            rows.append([f"{adapter.get('name')} ({adapter.get('slot')})", question,
                         "-" if rate.rate is None else f"{rate.rate:.0%}",
                         "-" if interval is None else f"{interval[0]:.0%} to {interval[1]:.0%}",
                         f"{rate.wins} / {rate.ties} / {rate.losses}", rate.reviews, rate.blind])
    return rows


def adapter_sha256(name_or_sha: str, reviews: Iterable[Judgement], library_sha: str | None = None) -> str:
    """The adapter file a win rate is asked for: the library's entry, a sha256 given, or the one file the
    reviews know under that name."""
    if library_sha:
        return library_sha
    if is_sha256(name_or_sha):
        return name_or_sha
    files = sorted({a["sha256"] for r in reviews for a in r.adapters if a.get("name") == name_or_sha})
    if not files:
        raise InputError(f"no adapter named {name_or_sha!r} in the library or in any review")
    if len(files) > 1:
        raise InputError(f"reviews know {len(files)} different files named {name_or_sha!r} (re-trained?): pass one "
                         f"sha256: {', '.join(files)}")
    return files[0]
