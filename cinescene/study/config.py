"""A study's settings: one file holds the study's own settings and every arm's training settings.

The file (TOML or YAML) has up to five tables::

    [study]   StudyConfig below: the held-out items, evaluation seeds, distances, the bootstrap
    [train]   TrainConfig settings every trained arm shares (model, data, stage, steps, seed, batches, ...)
    [lora]    the LoRA arm's own settings: rank, alpha, learning rate, optimiser (METHOD_SETTINGS)
    [full]    the full fine-tuning arm's own settings: learning rate, optimiser
    [sample]  SampleSettings of the evaluation shots (steps, frames, guidance, size, negative prompt)

Each setting is defined once, by the dataclass it belongs to: the tables are checked against TrainConfig and
SampleSettings fields. Only how an arm optimises may differ between arms; what it trains on, for how many steps
and from which seed is in [train], once. The settings that make the arms comparable (no early stopping, the last
weights published) and where each run goes are the study's own, and refused in the file.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..architecture import defaults_for
from ..distances import parse as parse_distances
from ..errors import InputError
from ..settings import SampleSettings
from ..training import config as train_config
from ..training.config import TrainConfig

BASE = "base"
ARMS = ("lora", "full")
STAGES = ("style", "motion")  # full fine-tuning trains one stage at a time
BOOTSTRAP_METHODS = ("percentile", "basic", "BCa")  # scipy.stats.bootstrap's methods
TABLES = ("study", "train", "lora", "full", "sample")
# TrainConfig settings an arm may set for itself in [lora] / [full]: how it optimises, not what it sees.
METHOD_SETTINGS = ("learning_rate", "weight_decay", "adam_betas", "max_grad_norm", "rank", "alpha", "fp8_base")
LORA_ONLY = ("rank", "alpha", "fp8_base")
# TrainConfig settings the study sets: an arm's name and method, where its files go, resuming, and what makes the
# arms comparable (matched steps: no early stopping; the last weights of every arm, not LoRA's best validated).
STUDY_SET = ("name", "method", "style_adapter", "runs_dir", "loras_dir", "models_dir", "resume", "overwrite",
             "early_stopping", "keep_best", "description", "extra")
# SampleSettings the study sets: prompts from the held-out items, seeds from eval_seeds, adapters per arm.
SAMPLE_SET = ("prompt", "seed", "adapters")
# What a setting decides. Changing a "train" one would need the arms trained again: refused for an existing study
# folder. "eval" and "report" ones make the study evaluate or report again.
TRAIN, EVAL, REPORT = "train", "eval", "report"
# Left out of the fingerprint: where the files go (the same study, wherever its folder is).
UNFINGERPRINTED = ("runs_dir", "loras_dir", "models_dir", "description", "cache_dir")


def _s(default: Any, help: str | None, part: str, **meta: Any) -> Any:
    """A study setting with its command-line help and the part of the study it decides."""
    kind = {"default_factory": default} if callable(default) else {"default": default}
    return field(**kind, metadata={"help": help, "part": part, **meta})


@dataclass
class StudyConfig:
    """The study's own settings ([study]) and its tables of training and sampling settings."""

    held_out: str = _s("", "held-out items: a folder of captioned clips and stills, or an eval set file (.jsonl, "
                           ".csv: image, prompt, reference); default: what the trainer holds out of the data (its "
                           "validation/ folder or split)", EVAL)
    max_items: int = _s(0, "evaluate at most this many held-out items (0: all of them)", EVAL)
    eval_seeds: tuple[int, ...] = _s((0,), "sampling seeds of every held-out item (the same for every arm)", EVAL)
    arms: tuple[str, ...] = _s(ARMS, "the trained arms beside the base model", TRAIN, choices=ARMS)
    distances: str = _s("auto", "FVD and FID against the held-out clips: auto (every one the clips allow and whose "
                                "network file is here; the report names the rest), none, or a comma list of "
                                "FVD_16, FVD_128, FID_128, FID_all", EVAL)
    i3d: str | None = _s(None, "StyleGAN-V's i3d_torchscript.pt for FVD (default: $CINESCENE_I3D or "
                               "~/.cache/cinescene/)", EVAL)
    inception: str | None = _s(None, "NVIDIA's inception-2015-12-05.pt for FID (default: $CINESCENE_INCEPTION or "
                                     "~/.cache/cinescene/)", EVAL)
    bootstrap_resamples: int = _s(10_000, "bootstrap resamples of the per-item metrics", REPORT)
    distance_resamples: int = _s(500, "bootstrap resamples of FVD and FID (each one refits two Gaussians per arm)",
                                 REPORT)
    bootstrap_seed: int = _s(0, "seed of the bootstrap's draws", REPORT)
    bootstrap_method: str = _s("percentile", "interval method (scipy.stats.bootstrap)", REPORT,
                               choices=BOOTSTRAP_METHODS)
    train: dict[str, Any] = _s(dict, None, TRAIN, cli=False)
    lora: dict[str, Any] = _s(dict, None, TRAIN, cli=False)
    full: dict[str, Any] = _s(dict, None, TRAIN, cli=False)
    sample: dict[str, Any] = _s(dict, None, EVAL, cli=False)

    def arm_configs(self, out: str | Path) -> dict[str, TrainConfig]:
        """Each trained arm's TrainConfig: [train], then its own table, then what the study sets."""
        out = Path(out)
        configs = {}
        for arm in self.arms:
            values = {**self.train, **getattr(self, arm), "name": arm, "method": arm, "runs_dir": str(out / "runs"),
                      "loras_dir": str(out / "loras"), "models_dir": str(out / "models"), "resume": True,
                      "early_stopping": False, "keep_best": False,
                      "description": f"the {arm} arm of the study in {out.name}"}
            configs[arm] = train_config.build(values)
        return configs

    def sample_template(self) -> SampleSettings:
        """The evaluation shot without its prompt and seed: the model's defaults, then [sample]."""
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in self.sample.items()}
        return defaults_for(self.model, values.get("preset")).settings("", **values)

    @property
    def model(self) -> str:
        return str(self.train.get("model", TrainConfig.model))

    @property
    def stage(self) -> str:
        return str(self.train.get("stage", TrainConfig.stage))

    def parts(self, arms: dict[str, TrainConfig]) -> dict[str, dict[str, Any]]:
        """The settings that decide each part of the study, as JSON would store them (its fingerprint)."""
        own = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name not in ("train", "lora", "full", "sample")}
        parts: dict[str, dict[str, Any]] = {TRAIN: {}, EVAL: {"sample": self.sample}, REPORT: {}}
        for f in dataclasses.fields(self):
            if f.name in own:
                parts[f.metadata["part"]][f.name] = own[f.name]
        parts[TRAIN]["arms"] = {arm: {k: v for k, v in c.to_dict().items() if k not in UNFINGERPRINTED}
                                for arm, c in arms.items()}
        return json.loads(json.dumps(parts))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def build(file_values: dict[str, Any] | None = None, study: dict[str, Any] | None = None,
          train: dict[str, Any] | None = None) -> StudyConfig:
    """The file's tables, then flags: ``study`` over [study], ``train`` over [train]; checked."""
    file_values = file_values or {}
    unknown = [k for k in file_values if k not in TABLES]
    if unknown:
        raise InputError(f"unknown table {unknown[0]!r} in the study file: use {', '.join(f'[{t}]' for t in TABLES)}")
    tables = {}
    for name in TABLES:
        table = file_values.get(name, {})
        if not isinstance(table, dict):
            raise InputError(f"[{name}] in the study file must be a table of settings")
        tables[name] = table
    known = {f.name for f in dataclasses.fields(StudyConfig) if f.metadata.get("cli") is not False}
    values: dict[str, Any] = {}
    for key, value in {**tables["study"], **{k: v for k, v in (study or {}).items() if v is not None}}.items():
        key = key.replace("-", "_")
        if key not in known:
            raise InputError(f"unknown study setting {key!r}")
        values[key] = tuple(value) if isinstance(value, list) else value
    config = StudyConfig(**values, train={**tables["train"], **(train or {})}, lora=tables["lora"],
                         full=tables["full"], sample=tables["sample"])
    validate(config)
    return config


def validate(c: StudyConfig) -> None:
    checks = [
        (bool(c.arms) and len(set(c.arms)) == len(c.arms) and all(a in ARMS for a in c.arms),
         f"arms must be one or both of {', '.join(ARMS)}, each once"),
        (1 <= len(c.eval_seeds) <= 16 and all(isinstance(s, int) for s in c.eval_seeds),
         "eval seeds must be 1 to 16 whole numbers"),
        (c.max_items >= 0, "max items must be 0 (all) or more"),
        (100 <= c.bootstrap_resamples <= 1_000_000 and 100 <= c.distance_resamples <= 100_000,
         "bootstrap resamples must be between 100 and 1,000,000 (distance resamples: 100 to 100,000)"),
        (c.bootstrap_method in BOOTSTRAP_METHODS, f"bootstrap method must be one of {', '.join(BOOTSTRAP_METHODS)}"),
    ]
    for ok, message in checks:
        if not ok:
            raise InputError(message)
    parse_distances(c.distances)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for key in c.train:
        key = key.replace("-", "_")
        if key not in fields:
            raise InputError(f"unknown training setting {key!r} in [train]")
        if key in STUDY_SET:
            raise InputError(f"[train] sets {key}: the study sets it for every arm itself")
        if key in LORA_ONLY:
            raise InputError(f"[train] sets {key}: it is the LoRA arm's setting, put it in [lora]")
    for arm in ARMS:
        for key in getattr(c, arm):
            key = key.replace("-", "_")
            if key in fields and key not in METHOD_SETTINGS:
                raise InputError(f"[{arm}] sets {key}: the arms must match in it, set it once in [train]")
            if key not in METHOD_SETTINGS:
                raise InputError(f"unknown setting {key!r} in [{arm}]: an arm may set {', '.join(METHOD_SETTINGS)}")
            if arm == "full" and key in LORA_ONLY:
                raise InputError(f"[full] sets {key}: it is a LoRA setting")
    if c.stage not in STAGES:
        raise InputError(f"a study trains one stage, style or motion (full fine-tuning trains one at a time), "
                         f"not {c.stage!r}")
    sample_fields = {f.name for f in dataclasses.fields(SampleSettings)}
    for key in c.sample:
        if key not in sample_fields or key in SAMPLE_SET:
            raise InputError(f"[sample] sets {key!r}: it may set "
                             f"{', '.join(sorted(sample_fields - set(SAMPLE_SET)))}")
    c.arm_configs(Path("study"))  # every arm's settings checked by TrainConfig's own rules, before any work
