"""What a run trains, in turn: units of one stage on one expert, their folders and seeds.

Wan2.1 and Wan2.2 TI2V-5B have one transformer, so a unit is a stage (style, motion). Wan2.2 I2V A14B's two
experts are trained apart, each on the timesteps it denoises at sampling: style on the high-noise expert,
style on the low-noise one, then motion on each. While one expert trains, the other carries exactly what
the run has published for it, loaded from the library's files, so validation shots (which go through both
experts) do not depend on whether an earlier unit ran in this process or before a resume.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import experts, slots
from ..adapters import AdapterLibrary
from ..architecture import LOW_NOISE, SINGLE, Family
from ..errors import InputError
from . import publish
from .config import TrainConfig


@dataclass(frozen=True)
class Unit:
    """One stage trained on one expert: what a run trains, checkpoints and publishes, in turn."""

    stage: str
    expert: str  # "high_noise" | "low_noise" for Wan2.2 A14B; SINGLE ("transformer") otherwise
    name: str  # the stage's name (NAME, or NAME-style / NAME-motion); the adapter adds the expert

    @property
    def adapter(self) -> str:
        return publish.adapter_name(self.name, self.expert)

    @property
    def key(self) -> str:
        return unit_key(self.stage, self.expert)


def unit_key(stage: str, expert: str) -> str:
    """What seeds a unit apart from the others: the stage alone for one expert (so Wan2.1 runs keep their seeds)."""
    return stage if expert == SINGLE else f"{stage}.{expert}"


def plan_units(config: TrainConfig, family: Family) -> list[Unit]:
    """Stage by stage, expert by expert: style (each expert), then motion (each expert)."""
    c = config
    stages = [("style", f"{c.name}-style"), ("motion", f"{c.name}-motion")] if c.stage == "both" \
        else [(c.stage, c.name)]
    if c.experts != "both" and not family.two_experts:
        raise InputError(f"--experts {c.experts} is for two-expert models (Wan2.2 I2V A14B); {c.model} has one "
                         "transformer")
    chosen = family.experts if c.experts == "both" else (c.experts,)
    return [Unit(stage, expert, name) for stage, name in stages for expert in chosen]


def stage_dir(config: TrainConfig, unit: Unit) -> Path:
    """``runs/NAME`` (one stage) or ``runs/NAME/STAGE`` (both), then the expert's folder for two experts."""
    folder = config.run_dir() / unit.stage if config.stage == "both" else config.run_dir()
    return folder if unit.expert == SINGLE else folder / unit.expert


def stage_seed(seed: int, key: str) -> int:
    """A seed for one unit's draws (LoRA init, batch order), independent of any other unit."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:4], "big")  # numpy takes 32 bits


def step_seed(seed: int, key: str, process: int, micro_step: int) -> int:
    """The noise and timestep seed of one micro-step: a function of where the run is, never of its history."""
    return (stage_seed(seed, key) * 1_000_003 + process * 7919 + micro_step) % 2**63


def range_for_log(timesteps: tuple[float, float] | None) -> list[float] | None:
    """[min, max) as JSON can hold it (the high-noise expert's open end as 1000, the last training timestep)."""
    if timesteps is None:
        return None
    return [timesteps[0], min(timesteps[1], 1000.0)]


def load_published(library: AdapterLibrary, pipe: Any, expert: str, kind: str, name: str) -> None:
    """Load a library adapter into one expert, as peft adapter ``kind`` (diffusers: transformer_2 for low noise)."""
    info = library.get(name, kind=kind)
    with slots.quiet_peft():
        pipe.load_lora_weights(str(library.verified_path(info)), adapter_name=kind,
                               **({"load_into_transformer_2": True} if expert == LOW_NOISE else {}))


def set_other_experts(library: AdapterLibrary, pipe: Any, unit: Unit, published: dict[str, dict[str, str]]) -> None:
    """Give every expert but the trained one exactly what ``published`` (expert -> stage -> name) holds for it."""
    for expert, module in experts.experts(pipe).items():
        if expert == unit.expert:
            continue
        for adapter in list(getattr(module, "peft_config", None) or {}):
            module.delete_adapters(adapter)
        for kind, name in published.get(expert, {}).items():
            load_published(library, pipe, expert, kind, name)
        if published.get(expert):
            module.set_adapter(list(published[expert]))
        slots.lora_to_compute_dtype(module)
