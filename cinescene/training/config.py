"""Training settings: one dataclass with the seed's defaults, loadable from TOML or YAML and flags."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..settings import DEFAULT_MODEL, METRIC_WEIGHTS

STAGES = ("style", "motion", "both")
METHODS = ("lora", "full")
EXPERTS = ("both", "high_noise", "low_noise")  # Wan2.2 I2V A14B's experts, each trained on its own timesteps
LR_SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup")
MIXED_PRECISION = ("auto", "bf16", "fp16", "no")
TIMESTEP_SAMPLING = ("uniform", "logit_normal")
# What a style frame is conditioned on (latent_cache.CONDITIONS); mixed: half regraded, half blank.
STYLE_CONDITIONS = ("regraded", "blank", "mixed")
VAL_SCORES = ("lpips", "look")  # what early stopping follows; both are lower-is-better means over the samples


def _f(default: Any, help: str | None = None, **meta: Any) -> Any:
    """A field with its command-line help (and ``flag``, ``choices``, ``cli=False``) in its metadata."""
    kind = {"default_factory": default} if callable(default) else {"default": default}
    return field(**kind, metadata={"help": help, **meta})


@dataclass
class TrainConfig:
    """Every training setting, once: flags (``cli/train.py``), config files and the Train tab derive from it."""

    # What to train on and what to produce.
    model: str = _f(DEFAULT_MODEL, "base model: hub id, folder or tiny (default: 480P)")
    data: str = _f("", "folder of captioned clips and stills")
    stage: str = _f("style", "style (stills and frames), motion (clips) or both in turn",
                    choices=STAGES)
    name: str = _f("", "adapter name (both: NAME-style and NAME-motion; Wan2.2 A14B: each as .high_noise and "
                       ".low_noise)")
    method: str = _f("lora", "lora, or full: all transformer weights, saved as a transformer folder",
                     choices=METHODS)
    style_adapter: str | None = _f(None, "frozen style adapter a motion-only run trains under (Wan2.2 A14B: the "
                                         "NAME of NAME.high_noise and NAME.low_noise)")
    # Off by default, measured on the toy model (docs/toy.md): an image-to-video clip's first frame already
    # carries its look, so under the style adapter the motion adapter sees the look twice and learns to take
    # the second dose away; beside the style at sampling it then undoes it (one style adapter, 600 motion steps:
    # both closed 0.26 of the look gap under the style, 0.59 without; the motion alone moved the look 25.5
    # against 3.2).
    motion_under_style: bool = _f(False, "both: train the motion stage under the style adapter just trained, "
                                         "frozen (the seed's method; a motion-only run does this with "
                                         "--style-adapter)")
    experts: str = _f("both", "Wan2.2 A14B: train the high-noise expert (timesteps >= the boundary), the "
                              "low-noise one (below it), or both in turn", choices=EXPERTS)
    # LoRA and optimisation (the product's defaults).
    rank: int = _f(8, "LoRA rank")
    alpha: float = _f(16.0, "LoRA alpha")
    learning_rate: float = _f(3e-5, "AdamW learning rate")
    adam_betas: tuple[float, float] = _f((0.9, 0.999), "AdamW betas")
    weight_decay: float = _f(0.01)
    lr_scheduler: str = _f("cosine", choices=LR_SCHEDULERS)
    warmup_ratio: float = _f(0.05, "share of the steps spent warming up the learning rate")
    batch_size: int = _f(1)
    grad_accum: int = _f(4, "gradient accumulation steps")
    steps: int = _f(4000, "optimizer steps per stage")
    max_grad_norm: float = _f(1.0, "gradient clipping norm")
    seed: int = _f(0)
    mixed_precision: str = _f("auto", "auto (bf16 on GPU, none on CPU), bf16, fp16 or no", choices=MIXED_PRECISION)
    gradient_checkpointing: bool = _f(True, "recompute block activations in the backward pass (less memory)")
    # Flow matching.
    shift: float = _f(3.0, "timestep shift for training (Wan's 3.0 at 480P)")
    timestep_sampling: str = _f("uniform", choices=TIMESTEP_SAMPLING)
    # Data and preprocessing.
    fps: int = _f(16, "frame rate clips are resampled to")
    window: int = _f(33, "frames per motion clip (4k+1)")
    style_frames_per_clip: int = _f(4, "single frames the style stage takes from each clip")
    style_condition: str = _f("mixed", "what a style frame is conditioned on: regraded (a copy of it under a "
                                       "random grade, so the adapter learns to apply the look to any still), blank "
                                       "(no first frame, as the frames after the first are sampled) or mixed (half "
                                       "each; measured best on the toy model, docs/toy.md)",
                              choices=STYLE_CONDITIONS)
    style_regrades: int = _f(1, "copies of each regraded style frame, each under its own random grade (the toy "
                                "recipe's 3 closed 0.44 of its look gap where 1 closed 0.27, docs/toy.md)")
    motion_regrades: int = _f(0, "copies of each motion window, each graded whole under its own random grade, so "
                                 "the motion adapter learns the move under many looks and not the footage's own")
    preset: str | None = _f(None, "bucket area preset (480P, 720P, preview; default: the model's own)")
    area: int | None = _f(None, "bucket pixel area (overrides the preset)")
    val_fraction: float = _f(0.1, "share of items held out when there is no validation/ folder")
    skip_bad: bool = _f(False, "train on the good files, report the rest")
    cache_dir: str | None = _f(None, "where encodings are cached (default: DATA/.cinescene-cache)")
    # Validation and early stopping.
    val_every: int = _f(200, "validate every N steps")
    val_items: int = _f(2, "held-out items sampled at each validation (all there are, if fewer)")
    val_seeds: int = _f(2, "seeds per held-out item at each validation; early stopping follows the mean")
    val_steps: int = _f(20, "denoising steps of a validation sample")
    val_guidance: float = _f(5.0, "guidance of a validation sample")
    patience: int = _f(5, "early stopping patience, in validations")
    val_score: str = _f("lpips", "what early stopping and the best weights follow: lpips (mean LPIPS to the "
                                 "held-out clips) or look (mean look distance to them: their colour grade, no "
                                 "network weights needed)", choices=VAL_SCORES)
    min_delta: float = _f(0.001, "smallest gain in the validation score (--val-score) that counts")
    early_stopping: bool = _f(True, "stop when validation stops improving, keeping the best weights")
    keep_best: bool = _f(True, "publish the best validated LoRA weights; --no-keep-best publishes the last ones, as "
                               "full fine-tuning always does (what a study compares)")
    metric_weights: str | None = _f(None, "validation metric weights (default: random on tiny)",
                                    choices=METRIC_WEIGHTS)
    # Checkpoints and outputs.
    checkpoint_every: int = _f(500, "checkpoint every N steps")
    keep_checkpoints: int = _f(2, "checkpoints kept on disk")
    runs_dir: str = _f("runs", "folder of run logs and checkpoints")
    loras_dir: str = _f("loras", "adapter library", flag="--loras")
    models_dir: str = _f("models", "where full fine-tunes are written")
    overwrite: bool = _f(False, "replace an adapter or model of the same name in the library")
    description: str | None = _f(None, "the published adapter's description (default: 'trained by cinescene on DATA')")
    resume: bool = _f(False, "continue from the latest checkpoint")
    # Memory.
    fp8_base: bool = _f(False, "store the frozen transformer in fp8 (layerwise casting), compute in bf16")
    offload_encoders: bool = _f(True, "move text and image encoders to the CPU after caching")
    extra: dict[str, Any] = _f(dict, cli=False)

    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Settings from a TOML or YAML file (a [train] table or the top level)."""
    data = read_file(path)
    return data.get("train", data)


def read_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The whole table of a TOML or YAML settings file, or a one-line error naming what is wrong with it."""
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
    return data


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
    from ..adapters import check_name

    if not c.data:
        raise InputError("no dataset: pass --data DIR")
    check_name(c.name)
    checks = [
        (c.stage in STAGES, f"stage must be one of {', '.join(STAGES)}"),
        (c.method in METHODS, f"method must be one of {', '.join(METHODS)}"),
        (c.experts in EXPERTS, f"experts must be one of {', '.join(EXPERTS)}"),
        (not (c.method == "full" and c.stage == "both"), "full fine-tuning trains one stage at a time"),
        (1 <= c.rank <= 256, "rank must be between 1 and 256"),
        (c.alpha > 0, "alpha must be positive"),
        # 0 is allowed: a run at learning rate 0 is the control that shows what training itself changed.
        (0 <= c.learning_rate < 1, "learning rate must be at least 0 and below 1"),
        (len(c.adam_betas) == 2 and all(0 <= b < 1 for b in c.adam_betas), "adam betas must be two values in [0, 1)"),
        (c.weight_decay >= 0, "weight decay must be at least 0"),
        (c.lr_scheduler in LR_SCHEDULERS, f"lr scheduler must be one of {', '.join(LR_SCHEDULERS)}"),
        (0 <= c.warmup_ratio < 1, "warm-up ratio must be in [0, 1)"),
        (1 <= c.batch_size <= 64, "batch size must be between 1 and 64"),
        (1 <= c.grad_accum <= 256, "gradient accumulation must be between 1 and 256"),
        (1 <= c.steps <= 1_000_000, "steps must be between 1 and 1,000,000"),
        (c.mixed_precision in MIXED_PRECISION, f"mixed precision must be one of {', '.join(MIXED_PRECISION)}"),
        (0 < c.shift <= 50, "shift must be in (0, 50]"),
        (c.timestep_sampling in TIMESTEP_SAMPLING, "timestep sampling must be uniform or logit_normal"),
        (1 <= c.fps <= 60, "fps must be between 1 and 60"),
        (c.window >= 5 and (c.window - 1) % 4 == 0 and c.window <= 241, "window must be 4k+1 frames, 5 to 241"),
        (1 <= c.style_frames_per_clip <= 64, "style frames per clip must be between 1 and 64"),
        (1 <= c.style_regrades <= 16, "style regrades must be between 1 and 16"),
        (0 <= c.motion_regrades <= 16, "motion regrades must be between 0 and 16"),
        (c.style_condition in STYLE_CONDITIONS, f"style condition must be one of {', '.join(STYLE_CONDITIONS)}"),
        (0 <= c.val_fraction < 1, "validation fraction must be in [0, 1)"),
        (c.val_every >= 1 and c.val_steps >= 1, "validation interval and steps must be at least 1"),
        (1 <= c.val_items <= 64 and 1 <= c.val_seeds <= 16,
         "validation items must be between 1 and 64 and seeds between 1 and 16"),
        (not (c.method == "full" and c.fp8_base), "fp8 storage is for a frozen base; full fine-tuning trains it"),
        (c.patience >= 1 and c.min_delta >= 0, "patience must be at least 1 and min_delta at least 0"),
        (not c.motion_under_style or c.stage == "both",
         "motion under style is for a both run (a motion-only run names its style with --style-adapter)"),
        (c.val_score in VAL_SCORES, f"validation score must be one of {', '.join(VAL_SCORES)}"),
        (c.checkpoint_every >= 1 and c.keep_checkpoints >= 1, "checkpoint interval and count must be at least 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise InputError(message)
