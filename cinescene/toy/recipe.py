"""The toy model's recipe constants and plumbing, shared by its VAE stage and its transformer stage.

Sizes, the ``Schedule`` (full and ``QUICK``), the learning-rate curve, the scenes each stage draws
from, and the clock and determinism settings that make a run repeatable for a thread count.
"""

from __future__ import annotations

import math
import platform
import resource
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import footage

HEIGHT, WIDTH = 64, 112  # latents 8 x 14, 4 x 7 patches per latent frame
CLIP_FRAMES = 17  # 5 latent frames
VAE_CLIP_FRAMES = 9  # first frame + two 4-frame chunks: every path of the causal VAE
# Prompt tokens (the tokenizer's model_max_length, read by loading.text_length): the longest toy caption is
# 24 tokens. Wan's 512 would leave ~490 identical zero-padding keys in every cross-attention.
TEXT_TOKENS = 32
FLOW_SHIFT = 3.0  # the trainer's default --shift and Wan's 480P sampling shift
# What the folder's cinescene.json states (read by architecture.folder_sampling): a recognisable
# moving picture in a few seconds on a CPU. Guidance 3 with the empty negative prompt: the transformer is
# trained with 10% of captions dropped to "", so the empty prompt is the baseline guidance steers away from.
SAMPLING = {"preset": "toy", "steps": 12, "guidance": 3.0, "frames": CLIP_FRAMES, "negative_prompt": ""}


@dataclass(frozen=True)
class Schedule:
    vae_frame_steps: int = 2200
    vae_frame_batch: int = 8
    vae_clip_steps: int = 250
    vae_clip_batch: int = 2
    vae_full_steps: int = 30
    vae_full_batch: int = 1
    vae_lr: float = 1e-3
    clips: int = 240  # neutral 17-frame clips for the transformer, every move equally
    images: int = 320  # neutral single frames (blank conditioning)
    steps: int = 5000
    caption_dropout: float = 0.1  # share of captions trained as "" (the negative prompt), so guidance has a baseline
    clip_batch: int = 8
    image_batch: int = 16
    image_every: int = 4  # every 4th step is a batch of single frames
    # Twice the first recipe's 6e-4: at 6e-4 five draws of six (VAEs, seeds) learnt the content and not the move in
    # the caption, and left the camera still whatever the prompt said; at 1.2e-3 two weak draws of two follow it.
    lr: float = 1.2e-3
    warmup: int = 150
    eval_scenes: int = 8  # held-out stills in the move check (6 move prompts each)


# A few steps of every stage: the suite runs it to show the recipe runs and is deterministic.
QUICK = Schedule(vae_frame_steps=3, vae_frame_batch=2, vae_clip_steps=2, vae_clip_batch=1, vae_full_steps=1,
                 vae_full_batch=1, clips=6, images=4, steps=6, clip_batch=2, image_batch=2, warmup=2, eval_scenes=1)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Clock:
    """Wall and CPU seconds per named phase (printed, and kept for toy_model.json)."""

    def __init__(self, report: Any = print) -> None:
        self.phases: dict[str, dict[str, float]] = {}
        self.report = report
        self._start = (time.perf_counter(), cpu_seconds())

    def lap(self, name: str) -> None:
        now = (time.perf_counter(), cpu_seconds())
        self.phases[name] = {"wall": round(now[0] - self._start[0], 2), "cpu": round(now[1] - self._start[1], 2)}
        self._start = now
        self.report(f"[{name}] {self.phases[name]['wall']:.1f} s wall, {self.phases[name]['cpu']:.1f} s CPU")


def setup_determinism(seed: int, threads: int) -> None:
    # Results depend on the thread count (kernels split reductions by thread): it is part of the recipe.
    torch.set_num_threads(threads)
    # Trained weights drift into the denormal range; on a CPU those are 10x slower and nothing needs them.
    torch.set_flush_denormal(True)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)


def machine() -> dict[str, Any]:
    """The CPU a run is repeatable on: the kernels oneDNN and MKL pick depend on its instruction set.

    Two runs with the same thread count on one kind of CPU write the same bytes; on another kind the
    convolutions and matrix products sum in another order, and the weights part after the first steps.
    """
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            name = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), name)
    except OSError:
        pass
    return {"cpu": name, "instruction_set": torch.backends.cpu.get_cpu_capability(), "arch": platform.machine()}


def parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


# The move check's stills: the same for every run, whatever its --seed (the shipped run's seed, so they include
# the two stills earlier records were checked on).
MOVE_CHECK_SEED = 0


def scene_for(kind: int, index: int, seed: int) -> footage.Scene:
    # ``kind`` keeps the VAE's, the transformer's and the checks' scenes apart (and apart from the demo set's).
    return footage.random_scene(np.random.default_rng([seed, 1000 + kind, index]), WIDTH / HEIGHT)


def to_pixels(frames: np.ndarray) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float (B, 3, T, H, W) in [-1, 1], as the pipeline's video processor gives."""
    return torch.from_numpy(frames).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0
