"""Where the app runs: a workstation, a CPU Space, or a ZeroGPU Space, and what each allows.

On Hugging Face Spaces (``SPACE_ID`` is set) the app is shared by strangers:
uploads, datasets, training and disk use get limits, and on ZeroGPU hardware
every GPU call runs inside ``@spaces.GPU`` with a duration sized to the request.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .environment import env_flag


@dataclass(frozen=True)
class Deployment:
    space_id: str | None
    zero_gpu: bool

    @property
    def on_space(self) -> bool:
        return self.space_id is not None


@dataclass(frozen=True)
class Limits:
    """What one deployment allows; a shared Space allows less than a workstation."""

    max_upload: str = "2gb"  # gradio's max_file_size
    max_dataset_bytes: int = 8 * 2**30
    max_train_steps: int = 1_000_000
    train_enabled: bool = True
    train_note: str | None = None
    outputs_max_age_hours: float = 24 * 7
    outputs_max_bytes: int = 50 * 2**30


def detect() -> Deployment:
    return Deployment(space_id=os.environ.get("SPACE_ID") or None, zero_gpu=env_flag("SPACES_ZERO_GPU"))


def limits_for(deployment: Deployment, tiny: bool) -> Limits:
    if not deployment.on_space:
        return Limits()
    if deployment.zero_gpu:
        return Limits(max_upload="200mb", max_dataset_bytes=200 * 2**20, train_enabled=False,
                      train_note="Training is off on this Space: ZeroGPU lends a GPU for minutes per request, and "
                                 "a LoRA run takes hours. Duplicate the Space on dedicated GPU hardware, or run "
                                 "cinescene on your own machine (see docs/deploy.md).",
                      outputs_max_age_hours=2, outputs_max_bytes=2 * 2**30)
    note = ("This Space runs the tiny model on a CPU: training is limited to 50 steps and 50 MB datasets, enough to "
            "see every part work. Duplicate it with a GPU for real runs (docs/deploy.md).") if tiny else (
            "Shared Space: training is limited to 2000 steps per stage and 2 GB datasets.")
    return Limits(max_upload="200mb", max_dataset_bytes=(50 if tiny else 2048) * 2**20,
                  max_train_steps=50 if tiny else 2000, train_note=note, outputs_max_age_hours=6,
                  outputs_max_bytes=5 * 2**30)


def gpu(fn: Callable[..., Any], duration: Callable[..., int]) -> Callable[..., Any]:
    """``fn`` inside ``@spaces.GPU(duration=...)`` when the spaces package exists (a no-op off ZeroGPU)."""
    if importlib.util.find_spec("spaces") is None:
        return fn
    import spaces

    return functools.wraps(fn)(spaces.GPU(duration=duration)(fn))


def sample_seconds(frames: int, steps: int, area: int, cfg: bool = True, generations: int = 1) -> int:
    """A ZeroGPU duration for ``generations`` videos on an H200-class GPU, with margin (at most 300 s):
    the 14B model does about 3.4 PFLOP per CFG step at 480P and 81 frames, and runs near 0.5 PFLOP/s."""
    tokens = ((frames - 1) // 4 + 1) * (area // 256)
    per_step = 3.4e15 * (tokens / 32_760) ** 1.3 * (1.0 if cfg else 0.5)
    return int(min(300, generations * max(60, 30 + 1.3 * steps * per_step / 0.5e15)))
