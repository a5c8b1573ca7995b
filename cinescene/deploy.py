"""Where the app runs: a workstation, a CPU Space, or a ZeroGPU Space, and what each allows.

On Hugging Face Spaces (``SPACE_ID`` is set) the app is shared by strangers:
uploads, datasets, training and disk use get limits, and on ZeroGPU hardware
every GPU call runs inside ``@spaces.GPU`` with a duration sized to the request.
A request whose estimate exceeds what one ZeroGPU call may last is refused
before the call, with settings that fit. Wherever strangers can reach the app
(a Space, a non-loopback bind, a share link) the engine options are fixed at
launch: one visitor must not reload or recompile the pipeline everybody shares.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import ipaddress
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .environment import env_flag
from .errors import InputError
from .settings import ModelDefaults, ModelSpec


@dataclass(frozen=True)
class Deployment:
    space_id: str | None
    zero_gpu: bool

    @property
    def on_space(self) -> bool:
        return self.space_id is not None


# What one ZeroGPU call may last. Not documented; Hugging Face staff answered "5 minutes is the maximum time
# that can be requested at once" (zero-gpu-explorers/README, discussion 7), and requests of 480 s and 900 s are
# refused as "larger than the maximum allowed". It may change, so it is a setting (--zero-gpu-max-seconds).
ZERO_GPU_MAX_SECONDS = 300


@dataclass(frozen=True)
class Shot:
    """The parts of a request that decide its GPU time (size after resolving, and the sampling that will run)."""

    frames: int
    height: int
    width: int
    steps: int
    cfg: bool
    generations: int = 1  # Compare makes two videos in one call


@dataclass(frozen=True)
class ZeroGpu:
    """How long a ZeroGPU call for a request lasts, from budget's FLOP count, and the most it may last.

    seconds = generations x max(floor, overhead + margin x steps x FLOPs per step / throughput). The
    throughput is the sustained bf16 rate of the lent GPU (an H200 slice: about half its dense peak); the
    overhead covers the encoders, the VAE decode and the weights moving onto the GPU.
    """

    max_seconds: int = ZERO_GPU_MAX_SECONDS
    tflops: float = 500.0
    overhead: float = 30.0
    margin: float = 1.3
    floor: float = 60.0

    def seconds(self, model: str, shot: Shot) -> int:
        from . import budget

        per_step = budget.step_flops(model, shot.height, shot.width, shot.frames, cfg=shot.cfg)
        one = max(self.floor, self.overhead + self.margin * shot.steps * per_step / (self.tflops * 1e12))
        return math.ceil(shot.generations * one)

    def fits(self, model: str, shot: Shot) -> bool:
        return self.seconds(model, shot) <= self.max_seconds

    def most_frames(self, model: str, shot: Shot) -> int | None:
        """The most frames (4k+1, at most the shot's) that fit with everything else as asked; None if 1 does not."""
        for frames in range(shot.frames, 0, -4):
            if self.fits(model, dataclasses.replace(shot, frames=frames)):
                return frames
        return None

    def most_steps(self, model: str, shot: Shot) -> int | None:
        for steps in range(shot.steps, 0, -1):
            if self.fits(model, dataclasses.replace(shot, steps=steps)):
                return steps
        return None

    def refusal(self, model: str, shot: Shot, speed: tuple[str | None, int] | None = None) -> str | None:
        """None if ``shot`` fits; otherwise one line saying so and proposing settings that fit.

        ``speed`` is (name of an installed speed adapter or None, its step count) when the shot does not use one.
        """
        need = self.seconds(model, shot)
        if need <= self.max_seconds:
            return None
        what = "this Compare (two videos)" if shot.generations > 1 else "this request"
        options = []
        frames = self.most_frames(model, shot) if shot.frames > 1 else None
        if frames is not None:
            options.append(f"at most {frames} frames at {shot.steps} steps")
        steps = self.most_steps(model, shot) if shot.steps > 1 else None
        if steps is not None:
            options.append(f"at most {steps} steps at {shot.frames} frames")
        if speed is not None:
            name, speed_steps = speed
            fast = dataclasses.replace(shot, steps=speed_steps, cfg=False)
            adapter = f"the speed adapter {name}" if name else "a speed adapter (import one on the Adapters tab)"
            if self.fits(model, fast):
                options.append(f"{adapter}: {speed_steps} steps without CFG")
            elif (fast_frames := self.most_frames(model, fast)) is not None:
                options.append(f"{adapter} ({speed_steps} steps without CFG) with at most {fast_frames} frames")
        if not options:
            options.append("a smaller size (the 480P preset or below)")
        return (f"{what} needs about {need} s of GPU time at {shot.width}x{shot.height}, and a ZeroGPU call may "
                f"last at most {self.max_seconds} s: choose " + ", or ".join(options))

    def check(self, model: str, shot: Shot, speed: tuple[str | None, int] | None = None) -> None:
        message = self.refusal(model, shot, speed)
        if message:
            raise InputError(message)

    def fitting_defaults(self, model: str, defaults: ModelDefaults, height: int, width: int,
                         generations: int = 1) -> ModelDefaults:
        """The model's defaults with as many frames as fit (then as many steps), so the first click works."""
        shot = Shot(defaults.frames, height, width, defaults.steps, defaults.guidance > 1, generations)
        if self.fits(model, shot):
            return defaults
        frames = self.most_frames(model, shot)
        if frames is not None:
            return dataclasses.replace(defaults, frames=frames)
        steps = self.most_steps(model, dataclasses.replace(shot, frames=1))
        return dataclasses.replace(defaults, frames=1, steps=steps or 1)


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
    zero_gpu: ZeroGpu | None = None  # set on ZeroGPU hardware: every GPU call has a maximum duration


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
                      outputs_max_age_hours=2, outputs_max_bytes=2 * 2**30, zero_gpu=ZeroGpu())
    note = ("This Space runs a small model on a CPU: training is limited to 50 steps and 50 MB datasets, enough to "
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


ENGINE_FIELDS = ("memory", "fp8", "attention", "compile", "vae_tiling")  # ModelSpec fields that (re)build the pipeline


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def engine_fixed(deployment: Deployment, host: str, share: bool) -> bool:
    """Whether strangers can reach the app, so that a request must not change the shared pipeline's engine."""
    return deployment.on_space or share or not is_loopback(host)


def describe_engine(spec: ModelSpec) -> str:
    return (f"memory {spec.memory}, fp8 {'on' if spec.fp8 else 'off'}, attention {spec.attention}, "
            f"compile {'on' if spec.compile else 'off'}, VAE tiling {'on' if spec.vae_tiling else 'off'}")


def check_engine(fixed: ModelSpec, requested: dict[str, Any]) -> None:
    """Refuse a request that asks a fixed engine for other options (``requested``: ENGINE_FIELDS values)."""
    changes = [f"{name} {value!r}" for name, value in requested.items() if value != getattr(fixed, name)]
    if changes:
        raise InputError(f"the engine of this app is fixed by its operator at launch ({describe_engine(fixed)}): a "
                         f"request cannot ask for {', '.join(changes)}; leave these options out or send these values")


def parse_auth(values: list[str]) -> list[tuple[str, str]]:
    """``USER:PASSWORD`` strings as gradio's auth pairs (the password may hold colons, the user may not)."""
    pairs = []
    for value in values:
        user, sep, password = value.partition(":")
        if not sep or not user.strip() or not password:
            raise InputError("--auth (or CINESCENE_AUTH) must be USER:PASSWORD with neither part empty")
        pairs.append((user.strip(), password))
    return pairs
