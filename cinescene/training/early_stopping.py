"""Early stopping's bookkeeping: the best validation so far, the validations since, when patience runs out.

The rule lives in the stage's state dict (what a checkpoint saves and a resume restores), so a resumed
stage keeps counting where the killed one stopped. It is a plain function of that dict and the config,
apart from the training loop: accelerate, peft and diffusers keep no such record for a LoRA run
(diffusers' scripts validate by eye, with no score to follow).
"""

from __future__ import annotations

import math
from typing import Any

from .config import TrainConfig


def new_state(stage: str, frozen_style: str | None) -> dict[str, Any]:
    """A stage's state before its first step (``checkpoints.save`` writes it whole)."""
    return {"stage": stage, "step": 0, "micro_step": 0, "best": None, "evals_since_best": 0, "history": [],
            "frozen_style": frozen_style, "stopped": None}


def score(summary: dict[str, Any], config: TrainConfig) -> float:
    """The number early stopping follows (lower is better): the mean LPIPS or look distance of a validation.

    A best recorded without it (a checkpoint from before the look was measured) counts as beaten.
    """
    return float(summary.get(config.val_score, math.inf))


def record(state: dict[str, Any], summary: dict[str, Any], config: TrainConfig) -> bool:
    """Add a validation at ``state["step"]`` to the state; True when it is the new best.

    Better means lower by more than ``min_delta``: noise between validations does not reset the patience.
    """
    best = state["best"]
    improved = best is None or score(summary, config) < score(best, config) - config.min_delta
    if improved:
        state["best"] = {"step": state["step"], **summary}
        state["evals_since_best"] = 0
    else:
        state["evals_since_best"] += 1
    state["history"].append({"step": state["step"], **summary})
    return improved


def patience_ran_out(state: dict[str, Any], config: TrainConfig) -> bool:
    return state["evals_since_best"] >= config.patience


def best_step(state: dict[str, Any]) -> int | None:
    return state["best"]["step"] if state.get("best") else None


def best_scores(state: dict[str, Any]) -> dict[str, Any] | None:
    return {k: v for k, v in state["best"].items() if k != "step"} if state.get("best") else None
