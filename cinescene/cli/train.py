"""``python -m cinescene train``: the trainer from the command line (and under torchrun / accelerate launch)."""

from __future__ import annotations

import argparse
import signal
from typing import Any

from ..progress import Event
from ..training.config import TrainConfig
from ..training.log import mean_sd
from .common import ProgressBars, add_dataclass_flags, given


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("train", help="train a style or motion LoRA (or fine-tune fully) on your clips")
    p.add_argument("--config", default=None, help="TOML or YAML file of settings; flags override it")
    add_dataclass_flags(p, TrainConfig)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)


class TrainProgress:
    """The trainer's events on a terminal: bars for caching and steps, a line per validation."""

    def __init__(self, enabled: bool) -> None:
        self.bars = ProgressBars(enabled, units={"caching": "sample"})

    def __call__(self, event: Event) -> None:
        self.bars(event)
        kind = event.get("type")
        if kind == "validation" and self.bars.enabled:
            samples = len(event.get("scores") or [None])
            best = " (best)" if event["best"] else ""
            look = f", look distance {mean_sd(event, 'look')}" if event.get("look") is not None else ""
            self.bars.write(f"validation at step {event['step']} ({samples} samples): "
                            f"LPIPS {mean_sd(event, 'lpips')}, CLIP-SIM {mean_sd(event, 'clip_text')}{look}{best}"
                            f"{'' if event.get('calibrated') else ' [uncalibrated LPIPS/CLIP]'}")
        elif kind in ("early_stop", "stopped", "done", "stage_done"):
            self.bars.close()

    def close(self) -> None:
        self.bars.close()


def cmd_train(args: argparse.Namespace) -> int:
    from ..training import config as train_config
    from ..training.trainer import Trainer

    file_values = train_config.load_file(args.config) if args.config else {}
    config = train_config.build(file_values, **given(args, TrainConfig))
    progress = TrainProgress(enabled=not args.quiet)
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
