"""Where an adapter acts on Wan2.2 A14B's two experts (its placement), and which file each expert gets.

Wan2.2 A14B denoises with a high-noise expert (``transformer``) while t >= the boundary and a low-noise
expert (``transformer_2``) after it. A library adapter is one file, or a pair: one file per expert, as
Wan2.2 LoRAs are published. Its placement says which experts it acts on: ``both``, ``high_noise`` or
``low_noise``; on the other expert its slot is at strength 0. A one-expert model (Wan2.1, TI2V-5B) has
nowhere else to put an adapter, so placement does not apply there.

Defaults (docs/wan22_adapters.md has the reasons and sources): a pair acts on both experts, each half on
the expert it was made for; a single file puts motion on the high-noise expert, which lays out the shot
("the early stages, focusing on overall layout", the Wan2.2 report), style on the low-noise expert, which
renders it ("the later stages, refining video details"), and speed (step distillation) on both, since it
must act on every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .architecture import HIGH_NOISE, LOW_NOISE
from .errors import InputError

BOTH = "both"
PLACEMENTS = (BOTH, HIGH_NOISE, LOW_NOISE)
KIND_DEFAULTS = {"style": LOW_NOISE, "motion": HIGH_NOISE, "speed": BOTH}
PAIR_DEFAULT = BOTH
LABEL = "Placement on Wan2.2's two experts"
HELP = ("which Wan2.2 A14B expert(s) the adapter acts on: both, high_noise (lays out the shot and its motion) or "
        "low_noise (renders the look and detail); default: both for a pair, else motion high_noise, style "
        "low_noise, speed both")


def placement_field() -> Any:
    """The one definition of the setting: the sidecar's field; the CLI flag and the app's control derive from it."""
    return field(default="", metadata={"help": HELP, "choices": PLACEMENTS, "label": LABEL})


def check_placement(placement: str) -> str:
    if placement not in PLACEMENTS:
        raise InputError(f"unknown placement {placement!r}: choose {', '.join(PLACEMENTS)}")
    return placement


def default_placement(kind: str, paired: bool) -> str:
    """Where an adapter acts unless its sidecar says otherwise."""
    return PAIR_DEFAULT if paired else KIND_DEFAULTS.get(kind, BOTH)


def experts_of(placement: str) -> tuple[str, ...]:
    """The experts a placement names, in denoising order."""
    return (HIGH_NOISE, LOW_NOISE) if check_placement(placement) == BOTH else (placement,)


@dataclass(frozen=True)
class PartFile:
    """One weights file of a library adapter: a pair's half (``expert`` says whose) or the single file (None)."""

    expert: str | None
    path: Path
    sha256: str
    size_bytes: int


def assign(model_experts: tuple[str, ...], files: list[PartFile], placement: str, name: str) -> dict[str, PartFile]:
    """Which file goes on which expert of a model (experts the placement leaves out get none)."""
    paired = any(part.expert is not None for part in files)
    if len(model_experts) == 1:
        if paired:
            raise InputError(f"adapter {name!r} is a Wan2.2 pair (one file per expert); the loaded model has one "
                             "transformer")
        return {model_experts[0]: files[0]}
    chosen = [expert for expert in experts_of(placement) if expert in model_experts]
    if paired:
        return {part.expert: part for part in files if part.expert in chosen}
    return {expert: files[0] for expert in chosen}
