"""``python -m cinescene train``: the trainer from the command line (and under torchrun / accelerate launch)."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any


def add_train_parser(sub: Any) -> None:
    from .config import METRIC_WEIGHTS
    from .train_config import METHODS, STAGES, TrainConfig

    defaults = TrainConfig()
    p = sub.add_parser("train", help="train a style or motion LoRA (or fine-tune fully) on your clips")
    p.add_argument("--config", default=None, help="TOML or YAML file of settings; flags override it")
    p.add_argument("--model", default=None, help="base model: hub id, folder or tiny (default: 480P)")
    p.add_argument("--data", default=None, help="folder of captioned clips and stills")
    p.add_argument("--stage", choices=STAGES, default=None)
    p.add_argument("--name", default=None, help="adapter name (both: NAME-style and NAME-motion)")
    p.add_argument("--method", choices=METHODS, default=None)
    p.add_argument("--style-adapter", default=None, help="frozen style adapter for a motion-only run")
    for flag, kind, help_ in (("--rank", int, "LoRA rank"), ("--alpha", float, "LoRA alpha"),
                              ("--learning-rate", float, "AdamW learning rate"), ("--weight-decay", float, None),
                              ("--warmup-ratio", float, None), ("--batch-size", int, None),
                              ("--grad-accum", int, "gradient accumulation steps"),
                              ("--steps", int, "optimizer steps per stage"), ("--seed", int, None),
                              ("--shift", float, "timestep shift"), ("--window", int, "frames per motion clip (4k+1)"),
                              ("--fps", int, None), ("--area", int, "bucket pixel area"),
                              ("--val-every", int, "validate every N steps"), ("--val-steps", int, None),
                              ("--patience", int, "early stopping patience, in validations"),
                              ("--min-delta", float, "smallest LPIPS gain that counts"),
                              ("--checkpoint-every", int, None), ("--val-fraction", float, None)):
        key = flag[2:].replace("-", "_")
        p.add_argument(flag, type=kind, default=None,
                       help=f"{help_ + '; ' if help_ else ''}default {getattr(defaults, key)}")
    p.add_argument("--lr-scheduler", default=None)
    p.add_argument("--mixed-precision", choices=("auto", "bf16", "fp16", "no"), default=None)
    p.add_argument("--timestep-sampling", choices=("uniform", "logit_normal"), default=None)
    p.add_argument("--preset", default=None, help="bucket area preset (480P, 720P, preview)")
    p.add_argument("--skip-bad", action="store_true", default=None, help="train on the good files, report the rest")
    p.add_argument("--no-early-stopping", dest="early_stopping", action="store_false", default=None)
    p.add_argument("--no-gradient-checkpointing", dest="gradient_checkpointing", action="store_false", default=None)
    p.add_argument("--fp8-base", action="store_true", default=None, help="store the frozen transformer in fp8")
    p.add_argument("--metric-weights", choices=METRIC_WEIGHTS, default=None)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--loras", dest="loras_dir", default=None)
    p.add_argument("--models-dir", default=None)
    p.add_argument("--resume", action="store_true", default=None, help="continue from the latest checkpoint")
    p.add_argument("--overwrite", action="store_true", default=None)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)


OVERRIDES = ("model", "data", "stage", "name", "method", "style_adapter", "rank", "alpha", "learning_rate",
             "weight_decay", "warmup_ratio", "batch_size", "grad_accum", "steps", "seed", "shift", "window", "fps",
             "area", "val_every", "val_steps", "patience", "min_delta", "checkpoint_every", "val_fraction",
             "lr_scheduler", "mixed_precision", "timestep_sampling", "preset", "skip_bad", "early_stopping",
             "gradient_checkpointing", "fp8_base", "metric_weights", "cache_dir", "runs_dir", "loras_dir",
             "models_dir", "resume", "overwrite")


class _Progress:
    """tqdm bars for caching and training, fed by the trainer's events."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.bar = enabled, None

    def __call__(self, event: dict[str, Any]) -> None:
        from tqdm import tqdm

        kind = event.get("type")
        if not self.enabled:
            return
        if kind == "cache_progress":
            if self.bar is None:
                self.bar = tqdm(total=event["total"], desc="caching", unit="sample", file=sys.stderr)
            self.bar.update(event["done"] - self.bar.n)
        elif kind == "stage_start":
            self.close()
            self.bar = tqdm(total=event["steps"], initial=event["resumed_from"], desc=f"train {event['stage']}",
                            unit="step", file=sys.stderr)
        elif kind == "step" and self.bar is not None:
            self.bar.update(event["step"] - self.bar.n)
            self.bar.set_postfix(loss=f"{event['loss']:.4f}", lr=f"{event['lr']:.2e}")
        elif kind == "validation":
            tqdm.write(f"validation at step {event['step']}: LPIPS {event['lpips']:.4f}, CLIP-SIM "
                       f"{event['clip_text']:.4f}{' (best)' if event['best'] else ''}"
                       f"{'' if event.get('calibrated') else ' [uncalibrated]'}", file=sys.stderr)
        elif kind in ("early_stop", "stopped", "done", "stage_done"):
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def cmd_train(args: argparse.Namespace) -> int:
    from . import train_config
    from .trainer import Trainer

    file_values = train_config.load_file(args.config) if args.config else {}
    config = train_config.build(file_values, **{k: getattr(args, k) for k in OVERRIDES})
    progress = _Progress(enabled=not args.quiet)
    trainer = Trainer(config, on_event=progress)

    def stop(signum: int, frame: Any) -> None:
        # Finish the current step, checkpoint, exit; a second signal kills at once.
        trainer.request_stop()
        signal.signal(signum, signal.SIG_DFL)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        result = trainer.run()
    finally:
        progress.close()
    if not trainer.accelerator.is_main_process:
        return 0
    for stage in result.stages:
        best = f", best at step {stage.best_step}" if stage.best_step is not None else ""
        print(f"{stage.stage}: {stage.output} after {stage.steps_done} steps ({stage.stopped}{best})")
    interrupted = any(s.stopped == "interrupted" for s in result.stages)
    return 130 if interrupted else 0
