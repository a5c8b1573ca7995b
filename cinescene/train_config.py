"""Training settings: one dataclass with the seed's defaults, loadable from TOML or YAML and flags."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import DEFAULT_MODEL
from .errors import InputError

STAGES = ("style", "motion", "both")
METHODS = ("lora", "full")


@dataclass
class TrainConfig:
    # What to train on and what to produce.
    model: str = DEFAULT_MODEL
    data: str = ""
    stage: str = "style"  # style | motion | both
    name: str = ""
    method: str = "lora"  # lora | full (all transformer weights; saved as a transformer folder)
    style_adapter: str | None = None  # the frozen look for a motion-only run
    # LoRA and optimisation (the product's defaults).
    rank: int = 8
    alpha: float = 16.0
    learning_rate: float = 3e-5
    adam_betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.01
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.05
    batch_size: int = 1
    grad_accum: int = 4
    steps: int = 4000  # optimizer steps per stage
    max_grad_norm: float = 1.0
    seed: int = 0
    mixed_precision: str = "auto"  # auto (bf16 on GPU, none on CPU) | bf16 | fp16 | no
    gradient_checkpointing: bool = True
    # Flow matching.
    shift: float = 3.0  # timestep shift for training (Wan's 3.0 at 480P)
    timestep_sampling: str = "uniform"  # uniform | logit_normal
    # Data and preprocessing.
    fps: int = 16
    window: int = 33  # frames per motion clip (4k+1)
    style_frames_per_clip: int = 4
    preset: str | None = None  # pixel area of the training buckets (default: the model's own preset)
    area: int | None = None  # or an explicit pixel area (overrides preset)
    val_fraction: float = 0.1
    skip_bad: bool = False
    cache_dir: str | None = None
    # Validation and early stopping.
    val_every: int = 200
    val_steps: int = 20
    val_guidance: float = 5.0
    patience: int = 5
    min_delta: float = 0.001
    early_stopping: bool = True
    metric_weights: str | None = None  # pretrained | fallback | random (default: random on tiny)
    # Checkpoints and outputs.
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    runs_dir: str = "runs"
    loras_dir: str = "loras"
    models_dir: str = "models"
    # Memory.
    overwrite: bool = False  # replace an adapter or model of the same name in the library
    resume: bool = False
    fp8_base: bool = False  # store the frozen transformer in fp8 (layerwise casting), compute in bf16
    offload_encoders: bool = True  # move text and image encoders to the CPU after caching
    extra: dict[str, Any] = field(default_factory=dict)

    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Settings from a TOML or YAML file (a [train] table or the top level)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"config file not found: {path}")
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        elif path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        else:
            raise InputError(f"config file {path.name}: use .toml, .yaml or .yml")
    except (tomllib.TOMLDecodeError, ValueError) as err:
        raise InputError(f"config file {path.name} does not parse: {err}") from err
    if not isinstance(data, dict):
        raise InputError(f"config file {path.name} must hold a table of settings")
    return data.get("train", data)


def build(file_values: dict[str, Any] | None = None, **overrides: Any) -> TrainConfig:
    """File values, then non-None overrides (command-line flags), checked."""
    known = {f.name: f for f in dataclasses.fields(TrainConfig)}
    values: dict[str, Any] = {}
    for key, value in {**(file_values or {}), **{k: v for k, v in overrides.items() if v is not None}}.items():
        key = key.replace("-", "_")
        if key not in known:
            raise InputError(f"unknown training setting {key!r}")
        values[key] = tuple(value) if key == "adam_betas" else value
    config = TrainConfig(**values)
    validate(config)
    return config


def validate(c: TrainConfig) -> None:
    from .adapters import check_name

    if not c.data:
        raise InputError("no dataset: pass --data DIR")
    check_name(c.name)
    checks = [
        (c.stage in STAGES, f"stage must be one of {', '.join(STAGES)}"),
        (c.method in METHODS, f"method must be one of {', '.join(METHODS)}"),
        (not (c.method == "full" and c.stage == "both"), "full fine-tuning trains one stage at a time"),
        (1 <= c.rank <= 256, "rank must be between 1 and 256"),
        (c.alpha > 0, "alpha must be positive"),
        (0 < c.learning_rate < 1, "learning rate must be between 0 and 1"),
        (len(c.adam_betas) == 2 and all(0 <= b < 1 for b in c.adam_betas), "adam betas must be two values in [0, 1)"),
        (c.weight_decay >= 0, "weight decay must be at least 0"),
        (c.lr_scheduler in ("cosine", "linear", "constant", "constant_with_warmup"), "unknown lr scheduler"),
        (0 <= c.warmup_ratio < 1, "warm-up ratio must be in [0, 1)"),
        (1 <= c.batch_size <= 64, "batch size must be between 1 and 64"),
        (1 <= c.grad_accum <= 256, "gradient accumulation must be between 1 and 256"),
        (1 <= c.steps <= 1_000_000, "steps must be between 1 and 1,000,000"),
        (c.mixed_precision in ("auto", "bf16", "fp16", "no"), "mixed precision must be auto, bf16, fp16 or no"),
        (0 < c.shift <= 50, "shift must be in (0, 50]"),
        (c.timestep_sampling in ("uniform", "logit_normal"), "timestep sampling must be uniform or logit_normal"),
        (1 <= c.fps <= 60, "fps must be between 1 and 60"),
        (c.window >= 5 and (c.window - 1) % 4 == 0 and c.window <= 241, "window must be 4k+1 frames, 5 to 241"),
        (1 <= c.style_frames_per_clip <= 64, "style frames per clip must be between 1 and 64"),
        (0 <= c.val_fraction < 1, "validation fraction must be in [0, 1)"),
        (c.val_every >= 1 and c.val_steps >= 1, "validation interval and steps must be at least 1"),
        (c.patience >= 1 and c.min_delta >= 0, "patience must be at least 1 and min_delta at least 0"),
        (c.checkpoint_every >= 1 and c.keep_checkpoints >= 1, "checkpoint interval and count must be at least 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise InputError(message)
