"""The transformers a pipeline denoises with (one, or Wan2.2 A14B's two experts), and which of them ran.

diffusers' WanImageToVideoPipeline picks the expert per step: ``transformer`` (the high-noise expert) while
the timestep t >= ``boundary_ratio * num_train_timesteps``, ``transformer_2`` (low noise) after. cinescene
does not reimplement that choice; it names the experts, and watches their forward calls so a record says
which expert denoised which steps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from .architecture import EXPERT_COMPONENTS, family_of_pipeline


def experts(pipe: Any) -> dict[str, torch.nn.Module]:
    """Expert name (``high_noise``/``low_noise``, or ``transformer``) -> module, in denoising order."""
    return {name: getattr(pipe, EXPERT_COMPONENTS[name]) for name in family_of_pipeline(pipe).experts}


def expert_module(pipe: Any, name: str) -> torch.nn.Module:
    """One expert of ``pipe`` by name."""
    found = experts(pipe)
    if name not in found:
        raise ValueError(f"this pipeline has no {name!r} expert, only {', '.join(found)}")
    return found[name]


def boundary_timestep(pipe: Any) -> float | None:
    """The timestep at which a two-expert pipeline switches experts (None for one expert)."""
    ratio = pipe.config.boundary_ratio
    return None if ratio is None else float(ratio) * pipe.scheduler.config.num_train_timesteps


class ExpertTrace:
    """Forward calls per expert during a pipeline call, with the timesteps they were called at."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per expert: forward calls, and the first and last timestep it denoised (in calling order)."""
        out: dict[str, dict[str, Any]] = {}
        for name, t in self.calls:
            entry = out.setdefault(name, {"calls": 0, "timesteps": []})
            entry["calls"] += 1
            if not entry["timesteps"] or entry["timesteps"][-1] != t:
                entry["timesteps"].append(t)
        return {name: {"calls": e["calls"], "steps": len(e["timesteps"]), "first_timestep": e["timesteps"][0],
                       "last_timestep": e["timesteps"][-1]} for name, e in out.items()}


@contextlib.contextmanager
def trace(pipe: Any) -> Iterator[ExpertTrace]:
    """Record every expert forward call made inside the block (hooks removed afterwards)."""
    record = ExpertTrace()
    handles = []
    for name, module in experts(pipe).items():

        def hook(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], name: str = name) -> None:
            timestep = kwargs.get("timestep", args[1] if len(args) > 1 else None)
            # TI2V passes one timestep per token (0 on the first frame's): the step's own is the largest.
            record.calls.append((name, float(timestep.max()) if timestep is not None else float("nan")))

        handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))
    try:
        yield record
    finally:
        for handle in handles:
            handle.remove()
